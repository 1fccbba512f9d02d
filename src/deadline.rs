//! When each phase of a request must have made progress by, as readings of the monotonic clock.
//!
//! The timeouts are passed to the host as `wasi:http` request options too, but a host may apply
//! them differently or not at all (jco's browser shim ignores the between-bytes one and merges
//! connect and first byte), so the transport also waits on a clock of its own and fails the
//! request here once a deadline passes: no host can make an operation hang.

use std::time::Duration;

use crate::config::TransportLimits;
use crate::error::Error;

/// At most this many characters of the host's words go into a message.
const QUOTE_LIMIT: usize = 200;

/// The parts of a request the component can tell apart from inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Handing the request body to the host.
    SendingBody,
    /// Waiting for the response's status and headers: connecting and the first byte, which
    /// `wasi:http` does not separate for the guest.
    AwaitingHead,
    /// Reading the response body.
    ReadingBody,
}

/// The operation's own end: no request of it runs past this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperationDeadline {
    /// Monotonic-clock reading.
    pub at: Duration,
    /// The configured `operation-timeout-ms`, for the message.
    pub timeout: Duration,
}

/// A deadline and what passing it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    pub at: Duration,
    phase: Phase,
    /// The operation's deadline came first.
    operation: bool,
}

/// The deadlines of one request, from the moment it was handed to the host.
#[derive(Clone, Copy, Debug)]
pub struct RequestClock {
    started: Duration,
    limits: TransportLimits,
}

impl RequestClock {
    pub fn start(now: Duration, limits: &TransportLimits) -> RequestClock {
        RequestClock {
            started: now,
            limits: *limits,
        }
    }

    pub fn started(&self) -> Duration {
        self.started
    }

    /// When `phase` fails if nothing happens after `progress`, the reading at which it last
    /// moved (bytes written or read; for [`Phase::AwaitingHead`], the request body sent).
    ///
    /// Until the connection can have been made (`connect-timeout-ms` after the start), the
    /// request's time is the connection's: only after it does a phase's own timeout run.
    pub fn deadline(&self, phase: Phase, progress: Duration) -> Deadline {
        let l = &self.limits;
        let connected_by = self.started.saturating_add(l.connect_timeout);
        let at = match phase {
            Phase::SendingBody => progress
                .max(connected_by)
                .saturating_add(l.between_bytes_timeout),
            Phase::AwaitingHead => progress
                .max(connected_by)
                .saturating_add(l.first_byte_timeout),
            Phase::ReadingBody => progress.saturating_add(l.between_bytes_timeout),
        };
        match l.operation {
            Some(op) if op.at <= at => Deadline {
                at: op.at,
                phase,
                operation: true,
            },
            _ => Deadline {
                at,
                phase,
                operation: false,
            },
        }
    }

    /// The error for a deadline that passed with `bytes` of the body moved so far.
    pub fn expired(&self, deadline: &Deadline, bytes: u64) -> Error {
        let l = &self.limits;
        let doing = match deadline.phase {
            Phase::SendingBody => format!("sending the request body ({bytes} bytes sent)"),
            Phase::AwaitingHead => "waiting for the response headers".to_owned(),
            Phase::ReadingBody => format!("reading the response body ({bytes} bytes received)"),
        };
        if deadline.operation {
            let timeout = l.operation.map_or(0, |op| millis(op.timeout));
            return Error::Timeout(format!(
                "the operation took longer than operation-timeout-ms ({timeout}) while {doing}"
            ));
        }
        let ms = millis;
        Error::Timeout(match deadline.phase {
            Phase::SendingBody => format!(
                "{doing}: no progress for between-bytes-timeout-ms ({})",
                ms(l.between_bytes_timeout)
            ),
            Phase::AwaitingHead => format!(
                "{doing}: none within connect-timeout-ms + first-byte-timeout-ms ({} + {})",
                ms(l.connect_timeout),
                ms(l.first_byte_timeout)
            ),
            Phase::ReadingBody => format!(
                "{doing}: no bytes for between-bytes-timeout-ms ({})",
                ms(l.between_bytes_timeout)
            ),
        })
    }

    /// What a connect timeout the host reports at `now` was. One that comes before
    /// `connect-timeout-ms` has passed cannot be that timeout: the host ran another timer under
    /// its name (jco's browser shim aborts at the first of connect and first byte, and calls it
    /// a connect timeout), so it is told as the first byte's.
    pub fn host_connect_timeout(&self, now: Duration) -> Error {
        let l = &self.limits;
        let elapsed = now.saturating_sub(self.started);
        let slack = (l.connect_timeout / 20).max(Duration::from_millis(50));
        if elapsed.saturating_add(slack) < l.connect_timeout {
            return Error::Timeout(format!(
                "waiting for the response headers: the host gave up after {} ms \
                 (first-byte-timeout-ms {})",
                millis(elapsed),
                millis(l.first_byte_timeout)
            ));
        }
        Error::Timeout(format!(
            "connecting to the server: not within connect-timeout-ms ({})",
            millis(l.connect_timeout)
        ))
    }

    /// What a failure the host reports on the body stream was. A host that applies the
    /// between-bytes timeout itself fails the stream when it runs out, and says so in words
    /// of its own (or none): a failure that comes at that moment is taken for the timeout.
    pub fn body_failure(
        &self,
        phase: Phase,
        message: &str,
        now: Duration,
        progress: Duration,
        bytes: u64,
    ) -> Error {
        let deadline = self.deadline(phase, progress);
        // The host's first line only, and not too much of it: wasmtime's CLI appends a whole
        // Rust backtrace, whose frames (`tokio::time::timeout::Timeout`) would read as one.
        let message = message.lines().next().unwrap_or_default().trim();
        let message = match message.char_indices().nth(QUOTE_LIMIT) {
            Some((at, _)) => &message[..at],
            None => message,
        };
        // Host timers and ours start from slightly different instants of the same progress.
        let slack = (self.limits.between_bytes_timeout / 20).max(Duration::from_millis(50));
        if message.to_ascii_lowercase().contains("timeout")
            || message.to_ascii_lowercase().contains("timed out")
            || now.saturating_add(slack) >= deadline.at
        {
            return self.expired(&deadline, bytes);
        }
        let doing = match phase {
            Phase::SendingBody => "sending the request body",
            Phase::AwaitingHead => "waiting for the response",
            Phase::ReadingBody => "reading the response body",
        };
        let message = if message.is_empty() {
            "the host gave no reason"
        } else {
            message
        };
        Error::Transport(format!("{doing} failed after {bytes} bytes: {message}"))
    }
}

/// `d` in whole milliseconds, for messages: a `u64` prints with less code than the `u128` of
/// `Duration::as_millis` (the timeouts come from `u32` milliseconds).
pub fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn limits(operation: Option<OperationDeadline>) -> TransportLimits {
        TransportLimits {
            connect_timeout: 5 * S,
            first_byte_timeout: 15 * S,
            between_bytes_timeout: 10 * S,
            max_body_bytes: 1 << 20,
            operation,
        }
    }

    fn clock(operation: Option<OperationDeadline>) -> RequestClock {
        RequestClock::start(100 * S, &limits(operation))
    }

    #[test]
    fn the_head_may_take_connect_plus_first_byte_or_first_byte_after_a_slow_body() {
        let c = clock(None);
        assert_eq!(c.deadline(Phase::AwaitingHead, 100 * S).at, 120 * S);
        // The body went out at 112 s: the first byte has its full 15 s from then.
        assert_eq!(c.deadline(Phase::AwaitingHead, 112 * S).at, 127 * S);
    }

    #[test]
    fn body_phases_run_from_the_last_progress() {
        let c = clock(None);
        assert_eq!(c.deadline(Phase::ReadingBody, 130 * S).at, 140 * S);
        // Writing can wait for the connection first.
        assert_eq!(c.deadline(Phase::SendingBody, 100 * S).at, 115 * S);
        assert_eq!(c.deadline(Phase::SendingBody, 108 * S).at, 118 * S);
    }

    #[test]
    fn the_operation_deadline_caps_every_phase_and_says_so() {
        let op = OperationDeadline {
            at: 107 * S,
            timeout: 60 * S,
        };
        let c = clock(Some(op));
        for phase in [Phase::SendingBody, Phase::AwaitingHead, Phase::ReadingBody] {
            let d = c.deadline(phase, 100 * S);
            assert_eq!(d.at, 107 * S);
            let Error::Timeout(m) = c.expired(&d, 0) else {
                panic!("not a timeout")
            };
            assert!(m.contains("operation-timeout-ms (60000)"), "{m}");
        }
        // A later operation deadline leaves the phase's own.
        let c = clock(Some(OperationDeadline {
            at: 500 * S,
            timeout: 60 * S,
        }));
        assert_eq!(c.deadline(Phase::AwaitingHead, 100 * S).at, 120 * S);
    }

    #[test]
    fn each_phase_names_itself_and_its_setting() {
        let c = clock(None);
        let message = |phase, bytes| match c.expired(&c.deadline(phase, 100 * S), bytes) {
            Error::Timeout(m) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            message(Phase::AwaitingHead, 0),
            "waiting for the response headers: none within connect-timeout-ms + \
             first-byte-timeout-ms (5000 + 15000)"
        );
        assert_eq!(
            message(Phase::ReadingBody, 1000),
            "reading the response body (1000 bytes received): no bytes for \
             between-bytes-timeout-ms (10000)"
        );
        assert_eq!(
            message(Phase::SendingBody, 4096),
            "sending the request body (4096 bytes sent): no progress for \
             between-bytes-timeout-ms (10000)"
        );
    }

    #[test]
    fn only_the_first_line_of_the_hosts_words_counts() {
        let c = clock(None);
        let backtrace = "hyper error: error reading a body from connection\nStack backtrace:\n  \
                         38: <tokio::time::timeout::Timeout<F> as Future>::poll";
        let e = c.body_failure(Phase::ReadingBody, backtrace, 131 * S, 130 * S, 7);
        assert_eq!(
            e,
            Error::Transport(
                "reading the response body failed after 7 bytes: hyper error: error reading a \
                 body from connection"
                    .into()
            )
        );
        let long = "x".repeat(1000);
        let Error::Transport(m) = c.body_failure(Phase::ReadingBody, &long, 131 * S, 130 * S, 0)
        else {
            panic!("not a transport error")
        };
        assert!(m.len() < 300, "{m}");
    }

    #[test]
    fn a_connect_timeout_before_its_time_is_the_first_bytes() {
        let c = clock(None);
        // Started at 100 s; connect-timeout-ms is 5000.
        let early = c.host_connect_timeout(102 * S);
        assert_eq!(
            early,
            Error::Timeout(
                "waiting for the response headers: the host gave up after 2000 ms \
                 (first-byte-timeout-ms 15000)"
                    .into()
            )
        );
        let on_time = c.host_connect_timeout(105 * S);
        assert_eq!(
            on_time,
            Error::Timeout("connecting to the server: not within connect-timeout-ms (5000)".into())
        );
    }

    #[test]
    fn a_body_failure_at_the_between_bytes_deadline_is_that_timeout() {
        let c = clock(None);
        // Failed 9.98 s after the last bytes, in the host's words: its own timer.
        let e = c.body_failure(
            Phase::ReadingBody,
            "aborted",
            139_980 * S / 1000,
            130 * S,
            7,
        );
        assert!(
            matches!(&e, Error::Timeout(m) if m.contains("7 bytes received")),
            "{e:?}"
        );
        // A host that says timeout is believed whenever it says it.
        let e = c.body_failure(
            Phase::ReadingBody,
            "connection read timeout",
            131 * S,
            130 * S,
            7,
        );
        assert!(matches!(e, Error::Timeout(_)), "{e:?}");
        // Early, it is the connection's failure.
        let e = c.body_failure(Phase::ReadingBody, "aborted", 131 * S, 130 * S, 7);
        assert_eq!(
            e,
            Error::Transport("reading the response body failed after 7 bytes: aborted".into())
        );
        let e = c.body_failure(Phase::SendingBody, "", 101 * S, 100 * S, 0);
        assert_eq!(
            e,
            Error::Transport(
                "sending the request body failed after 0 bytes: the host gave no reason".into()
            )
        );
    }
}
