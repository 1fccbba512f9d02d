//! Which failures are worth another attempt, how long to wait before it, and a budget that
//! stops a store from hammering an endpoint that keeps failing.

use std::cell::Cell;
use std::time::Duration;

use crate::error::Error;

/// First back-off ceiling; doubles per retry up to [`MAX_BACKOFF`] (AWS "standard" mode caps
/// at 20 s; a result store wants to recover faster than that).
pub const BASE_BACKOFF: Duration = Duration::from_millis(50);
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Failures that say nothing about the request itself: the same request may well succeed.
/// Every operation of the store (GET, PUT, DELETE of one object) is idempotent, so any of them
/// may be repeated.
pub fn is_retryable(error: &Error) -> bool {
    match error {
        Error::Transport(_) | Error::Timeout(_) => true,
        Error::S3(info) => {
            matches!(info.status, 429 | 500 | 502 | 503 | 504)
                || matches!(
                    info.code.as_str(),
                    "RequestTimeout"
                        | "SlowDown"
                        | "InternalError"
                        | "ServiceUnavailable"
                        | "Throttling"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                        // The body arrived damaged (its Content-MD5 or signed SHA-256 does
                        // not match; Garage says InvalidDigest): nothing was stored, and the
                        // next send may well arrive intact. The store computes its digests
                        // itself, so a digest it sent was never malformed.
                        | "BadDigest"
                        | "InvalidDigest"
                        | "XAmzContentSHA256Mismatch"
                )
        }
        _ => false,
    }
}

/// Full jitter: a uniformly random wait in `[0, min(MAX_BACKOFF, BASE_BACKOFF * 2^retry))`,
/// so clients that failed together do not retry together. `retry` counts from 0.
pub fn backoff(retry: u32, random: u64) -> Duration {
    let ceiling = BASE_BACKOFF
        .checked_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(if nanos == 0 { 0 } else { random % nanos })
}

/// A token bucket shared by all operations of one store, as in the AWS SDKs' standard mode:
/// a retry costs tokens, a success earns one back, and an empty bucket means "fail now".
#[derive(Debug)]
pub struct RetryBudget {
    tokens: Cell<u32>,
}

pub const BUDGET_CAPACITY: u32 = 500;
const RETRY_COST: u32 = 5;
const TIMEOUT_RETRY_COST: u32 = 10;
const SUCCESS_REFUND: u32 = 1;

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            tokens: Cell::new(BUDGET_CAPACITY),
        }
    }
}

impl RetryBudget {
    /// Takes the cost of retrying after `error`; false when the budget cannot pay it.
    pub fn withdraw(&self, error: &Error) -> bool {
        let cost = match error {
            Error::Timeout(_) => TIMEOUT_RETRY_COST,
            _ => RETRY_COST,
        };
        match self.tokens.get().checked_sub(cost) {
            Some(left) => {
                self.tokens.set(left);
                true
            }
            None => false,
        }
    }

    pub fn deposit_success(&self) {
        self.tokens
            .set((self.tokens.get() + SUCCESS_REFUND).min(BUDGET_CAPACITY));
    }

    pub fn tokens(&self) -> u32 {
        self.tokens.get()
    }
}

/// The error to report after `attempts` attempts: the last failure, saying how many were made.
pub fn exhausted(error: Error, attempts: u32, why: &str) -> Error {
    if attempts <= 1 && why.is_empty() {
        return error;
    }
    let note = if why.is_empty() {
        format!("gave up after {attempts} attempts")
    } else {
        format!("gave up after {attempts} attempts: {why}")
    };
    match error {
        Error::Transport(m) => Error::Transport(format!("{m} ({note})")),
        Error::Timeout(m) => Error::Timeout(format!("{m} ({note})")),
        Error::S3(mut info) => {
            info.message = if info.message.is_empty() {
                format!("({note})")
            } else {
                format!("{} ({note})", info.message)
            };
            Error::S3(info)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::S3ErrorInfo;

    fn s3(status: u16, code: &str) -> Error {
        Error::S3(S3ErrorInfo {
            status,
            code: code.into(),
            message: String::new(),
            request_id: None,
        })
    }

    #[test]
    fn transient_failures_are_retried() {
        for e in [
            s3(500, "InternalError"),
            s3(502, ""),
            s3(503, "SlowDown"),
            s3(504, ""),
            s3(400, "RequestTimeout"),
            s3(429, ""),
            s3(400, "BadDigest"),
            s3(400, "XAmzContentSHA256Mismatch"),
            s3(400, "InvalidDigest"),
            Error::Transport("reset".into()),
            Error::Timeout("first byte".into()),
        ] {
            assert!(is_retryable(&e), "{e}");
        }
    }

    #[test]
    fn other_client_errors_are_not() {
        for e in [
            s3(400, "InvalidArgument"),
            s3(409, "Conflict"),
            s3(412, "PreconditionFailed"),
            Error::NoSuchBucket("b".into()),
            Error::AccessDenied(S3ErrorInfo {
                status: 403,
                code: "AccessDenied".into(),
                message: String::new(),
                request_id: None,
            }),
            Error::InvalidKey("empty".into()),
            Error::ValueTooLarge("big".into()),
        ] {
            assert!(!is_retryable(&e), "{e}");
        }
    }

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_ceiling() {
        assert_eq!(backoff(0, 0), Duration::ZERO);
        assert_eq!(
            backoff(0, u64::MAX),
            Duration::from_nanos(u64::MAX % 50_000_000)
        );
        for retry in 0..40 {
            let ceiling = (BASE_BACKOFF * 2u32.saturating_pow(retry.min(20))).min(MAX_BACKOFF);
            for random in [0, 1, 12_345_678_901, u64::MAX / 3, u64::MAX] {
                let d = backoff(retry, random);
                assert!(d < ceiling, "retry {retry}: {d:?} >= {ceiling:?}");
            }
        }
        assert!(backoff(30, u64::MAX / 2) < MAX_BACKOFF);
    }

    #[test]
    fn budget_runs_out_and_refills_slowly() {
        let budget = RetryBudget::default();
        let reset = Error::Transport("reset".into());
        let mut retries = 0;
        while budget.withdraw(&reset) {
            retries += 1;
        }
        assert_eq!(retries, BUDGET_CAPACITY / 5);
        assert!(!budget.withdraw(&reset));
        for _ in 0..5 {
            budget.deposit_success();
        }
        assert!(budget.withdraw(&reset));
        assert!(!budget.withdraw(&Error::Timeout("t".into())));
    }

    #[test]
    fn exhausted_errors_say_how_many_attempts() {
        let e = exhausted(s3(503, "SlowDown"), 3, "");
        assert!(e.to_string().contains("gave up after 3 attempts"), "{e}");
        assert!(matches!(&e, Error::S3(i) if i.code == "SlowDown"));
        let e = exhausted(
            Error::Transport("connection reset".into()),
            2,
            "retry budget spent",
        );
        assert_eq!(
            e.to_string(),
            "transport error: connection reset (gave up after 2 attempts: retry budget spent)"
        );
        assert_eq!(
            exhausted(Error::Timeout("x".into()), 1, ""),
            Error::Timeout("x".into())
        );
    }
}
