//! One store operation from start to finish, over an injected transport and system: the only
//! place where key, request, signature, response, retries and error mapping come together.

use std::cell::Cell;
use std::time::{Duration, SystemTime};

use crate::config::{Config, TransportLimits};
use crate::deadline::OperationDeadline;
use crate::error::Error;
use crate::integrity::{self, ChecksumKnowledge};
use crate::key::ObjectKey;
use crate::request::{self, Operation};
use crate::response::{self, Response};
use crate::retry::{self, RetryBudget};
use crate::sign;

/// How many requests a batch operation keeps in flight at once: enough to hide latency, few
/// enough not to open hundreds of connections to one server.
pub const MAX_IN_FLIGHT: usize = 32;

/// Sends one signed request and returns the whole response. Implemented over `wasi:http` in
/// the component. Fails with `Error::Transport`, `Error::Timeout`, or `Error::ValueTooLarge`
/// when the response body exceeds `limits.max_body_bytes`.
pub trait Transport {
    fn send(
        &self,
        request: &http::Request<Vec<u8>>,
        limits: &TransportLimits,
    ) -> Result<Response, Error>;

    /// Sends independent requests, all in flight at once where the transport can; one result
    /// per request, in order. By default, one after the other.
    fn send_all(
        &self,
        requests: &[http::Request<Vec<u8>>],
        limits: &TransportLimits,
    ) -> Vec<Result<Response, Error>> {
        requests.iter().map(|r| self.send(r, limits)).collect()
    }
}

/// Time and chance, injected so retries and signatures are testable exactly.
pub trait System {
    /// Wall-clock time, for signatures.
    fn now(&self) -> SystemTime;
    /// A monotonic reading, for the operation's time limit.
    fn monotonic(&self) -> Duration;
    fn sleep(&self, duration: Duration);
    /// Randomness for back-off jitter; need not be cryptographic.
    fn random(&self) -> u64;
}

/// The result store over one bucket.
pub struct Store<T, S> {
    config: Config,
    signer: sign::Signer,
    transport: T,
    system: S,
    budget: RetryBudget,
    /// Server clock minus ours, learned from a `RequestTimeTooSkewed` answer; kept for later
    /// requests so one skewed clock costs one extra request per store, not per operation.
    clock_offset_ms: Cell<i64>,
    /// Whether the server takes flexible checksums, learned from its answers to PUTs.
    checksums: ChecksumKnowledge,
}

impl<T: Transport, S: System> Store<T, S> {
    pub fn new(config: Config, transport: T, system: S) -> Self {
        let signer = sign::Signer::new(config.credentials.clone(), config.region.clone());
        Store {
            config,
            signer,
            transport,
            system,
            budget: RetryBudget::default(),
            clock_offset_ms: Cell::new(0),
            checksums: ChecksumKnowledge::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.execute(Operation::Get, key, Vec::new())
    }

    pub fn set(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        self.execute(Operation::Put, key, value).map(drop)
    }

    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.execute(Operation::Delete, key, Vec::new()).map(drop)
    }

    /// Reads many keys at once: requests go out in rounds of up to [`MAX_IN_FLIGHT`] together
    /// (where the transport can), then those that failed transiently get the usual retries,
    /// one by one. One result per key, in order.
    pub fn get_many(&self, keys: &[&str]) -> Vec<Result<Option<Vec<u8>>, Error>> {
        self.execute_many(
            Operation::Get,
            keys.iter().map(|k| (*k, Vec::new())).collect(),
        )
    }

    /// Stores many values at once, as [`Store::get_many`] reads.
    pub fn set_many(&self, entries: Vec<(&str, Vec<u8>)>) -> Vec<Result<(), Error>> {
        let results = self.execute_many(Operation::Put, entries);
        results.into_iter().map(|r| r.map(drop)).collect()
    }

    /// Removes many keys at once, as [`Store::get_many`] reads.
    pub fn delete_many(&self, keys: &[&str]) -> Vec<Result<(), Error>> {
        let entries = keys.iter().map(|k| (*k, Vec::new())).collect();
        let results = self.execute_many(Operation::Delete, entries);
        results.into_iter().map(|r| r.map(drop)).collect()
    }

    fn execute_many(
        &self,
        operation: Operation,
        entries: Vec<(&str, Vec<u8>)>,
    ) -> Vec<Result<Option<Vec<u8>>, Error>> {
        let mut results = Vec::with_capacity(entries.len());
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let round: Vec<(&str, Vec<u8>)> = entries.by_ref().take(MAX_IN_FLIGHT).collect();
            results.extend(self.execute_round(operation, round));
        }
        results
    }

    fn execute_round(
        &self,
        operation: Operation,
        entries: Vec<(&str, Vec<u8>)>,
    ) -> Vec<Result<Option<Vec<u8>>, Error>> {
        let now = shift(self.system.now(), self.clock_offset_ms.get());
        let mut results: Vec<Option<Result<Option<Vec<u8>>, Error>>> =
            (0..entries.len()).map(|_| None).collect();
        let mut requests = Vec::with_capacity(entries.len());
        let mut owners = Vec::with_capacity(entries.len());
        for (index, (key, body)) in entries.into_iter().enumerate() {
            let prepared = self.prepare(operation, key, body).and_then(|mut request| {
                self.signer.sign(&mut request, now)?;
                Ok(request)
            });
            match prepared {
                Ok(request) => {
                    requests.push(request);
                    owners.push(index);
                }
                Err(e) => results[index] = Some(Err(e)),
            }
        }
        let round_started = self.system.monotonic();
        let limits = self.limits_until(round_started);
        let responses = self.transport.send_all(&requests, &limits);
        let bucket = &self.config.bucket;
        for ((index, mut request), response) in owners.into_iter().zip(requests).zip(responses) {
            if let Ok(response) = &response {
                self.checksums.learn(&request, response);
            }
            let outcome = response.and_then(|r| response::outcome(operation, bucket, r));
            results[index] = Some(match outcome {
                Ok(value) => {
                    self.budget.deposit_success();
                    Ok(value)
                }
                // Transient failures get the rest of a single operation's attempts and time;
                // a skew answer (a 403), a fresh operation that corrects the clock first.
                Err(e) if retry::is_retryable(&e) => {
                    self.run_after(&mut request, round_started, Some(e), |r| {
                        response::outcome(operation, bucket, r)
                    })
                }
                Err(e) if is_skew(&e) => {
                    self.run(&mut request, |r| response::outcome(operation, bucket, r))
                }
                Err(e) => Err(e),
            });
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Transport("no response".into()))))
            .collect()
    }

    /// The unsigned request for one operation, after every check that needs no network.
    pub(crate) fn prepare(
        &self,
        operation: Operation,
        key: &str,
        body: Vec<u8>,
    ) -> Result<http::Request<Vec<u8>>, Error> {
        let limit = self.config.limits.max_body_bytes;
        if body.len() as u64 > limit {
            return Err(Error::ValueTooLarge(format!(
                "the value is {} bytes; max-value-bytes is {limit}",
                body.len()
            )));
        }
        let key = ObjectKey::new(&self.config.base_path, key)?;
        let mut request = request::build(&self.config, operation, &key, body)?;
        if operation == Operation::Put {
            integrity::protect_put_body(&mut request, self.checksums.get());
        }
        Ok(request)
    }

    fn execute(
        &self,
        operation: Operation,
        key: &str,
        body: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut request = self.prepare(operation, key, body)?;
        let bucket = &self.config.bucket;
        self.run(&mut request, |response| {
            response::outcome(operation, bucket, response)
        })
    }

    /// Signs and sends `request` until `parse` accepts the response, a failure is final, or
    /// the attempts, the operation's time or the retry budget run out. Any request of the
    /// store goes through here, so every one gets the same retries and skew correction.
    pub fn run<R>(
        &self,
        request: &mut http::Request<Vec<u8>>,
        parse: impl Fn(Response) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.run_after(request, self.system.monotonic(), None, parse)
    }

    /// [`Store::run`] for an operation that began at `started` and whose first attempt,
    /// if any, already failed with `failed` (a batch's round): that attempt counts.
    fn run_after<R>(
        &self,
        request: &mut http::Request<Vec<u8>>,
        started: Duration,
        mut failed: Option<Error>,
        parse: impl Fn(Response) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let limits = self.limits_until(started);
        let mut attempts = 0;
        let mut skew_corrected = false;
        loop {
            attempts += 1;
            let error = match failed.take() {
                Some(error) => error,
                None => match self.attempt(request, &limits, &mut skew_corrected) {
                    Ok(Attempt::Done(response)) => match parse(*response) {
                        Ok(value) => {
                            self.budget.deposit_success();
                            return Ok(value);
                        }
                        Err(e) => e,
                    },
                    Ok(Attempt::ClockCorrected) => {
                        // Not a failure of the server's: try again at once, uncounted.
                        attempts -= 1;
                        continue;
                    }
                    Err(e) => e,
                },
            };
            self.before_retry(error, attempts, started)?;
        }
    }

    /// After attempt number `attempts` of an operation that began at `started` failed with
    /// `error`: waits out the back-off and returns, or returns the error to report. Shared by
    /// every caller of [`Store::run`] rather than part of each of its copies.
    #[inline(never)]
    fn before_retry(&self, error: Error, attempts: u32, started: Duration) -> Result<(), Error> {
        if !retry::is_retryable(&error) || attempts >= self.config.retry.max_attempts {
            return Err(retry::exhausted(error, attempts, ""));
        }
        let wait = retry::backoff(attempts - 1, self.system.random());
        let elapsed = self.system.monotonic().saturating_sub(started);
        if elapsed + wait >= self.config.retry.operation_timeout {
            return Err(retry::exhausted(
                error,
                attempts,
                "operation timeout reached",
            ));
        }
        if !self.budget.withdraw(&error) {
            return Err(retry::exhausted(error, attempts, "retry budget spent"));
        }
        self.system.sleep(wait);
        Ok(())
    }

    /// Wall-clock time as the store's system tells it (for Celery's `date_done`).
    pub fn now(&self) -> SystemTime {
        self.system.now()
    }

    /// Randomness from the store's system (write ids, jitter between conflicting writes).
    pub(crate) fn random(&self) -> u64 {
        self.system.random()
    }

    /// Waits on the store's system clock (between conflicting writes).
    pub(crate) fn sleep(&self, duration: Duration) {
        self.system.sleep(duration);
    }

    /// The transport's limits for an operation that began at `started` (monotonic).
    fn limits_until(&self, started: Duration) -> TransportLimits {
        let timeout = self.config.retry.operation_timeout;
        TransportLimits {
            operation: Some(OperationDeadline {
                at: started.saturating_add(timeout),
                timeout,
            }),
            ..self.config.limits
        }
    }

    fn attempt(
        &self,
        request: &mut http::Request<Vec<u8>>,
        limits: &TransportLimits,
        skew_corrected: &mut bool,
    ) -> Result<Attempt, Error> {
        let now = self.system.now();
        self.signer
            .sign(request, shift(now, self.clock_offset_ms.get()))?;
        let response = self.transport.send(request, limits)?;
        self.checksums.learn(request, &response);
        if !*skew_corrected && let Some(offset) = response::clock_offset(&response, now) {
            *skew_corrected = true;
            self.clock_offset_ms.set(offset);
            return Ok(Attempt::ClockCorrected);
        }
        Ok(Attempt::Done(Box::new(response)))
    }
}

fn is_skew(error: &Error) -> bool {
    matches!(error, Error::AccessDenied(info) if info.code == "RequestTimeTooSkewed")
}

enum Attempt {
    // Boxed: a response is several times the size of the other variant.
    Done(Box<Response>),
    ClockCorrected,
}

fn shift(time: SystemTime, offset_ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(offset_ms.unsigned_abs());
    let shifted = if offset_ms >= 0 {
        time.checked_add(magnitude)
    } else {
        time.checked_sub(magnitude)
    };
    shifted.unwrap_or(time)
}

#[cfg(test)]
mod tests;
