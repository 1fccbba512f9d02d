//! One store operation from start to finish, over an injected transport and system: the only
//! place where key, request, signature, response, retries and error mapping come together.

use std::cell::Cell;
use std::time::{Duration, SystemTime};

use crate::config::{Config, TransportLimits};
use crate::error::Error;
use crate::integrity;
use crate::key::ObjectKey;
use crate::request::{self, Operation};
use crate::response::{self, Response};
use crate::retry::{self, RetryBudget};
use crate::sign;

/// Sends one signed request and returns the whole response. Implemented over `wasi:http` in
/// the component. Fails with `Error::Transport`, `Error::Timeout`, or `Error::ValueTooLarge`
/// when the response body exceeds `limits.max_body_bytes`.
pub trait Transport {
    fn send(
        &self,
        request: &http::Request<Vec<u8>>,
        limits: &TransportLimits,
    ) -> Result<Response, Error>;
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
    transport: T,
    system: S,
    budget: RetryBudget,
    /// Server clock minus ours, learned from a `RequestTimeTooSkewed` answer; kept for later
    /// requests so one skewed clock costs one extra request per store, not per operation.
    clock_offset_ms: Cell<i64>,
}

impl<T: Transport, S: System> Store<T, S> {
    pub fn new(config: Config, transport: T, system: S) -> Self {
        Store {
            config,
            transport,
            system,
            budget: RetryBudget::default(),
            clock_offset_ms: Cell::new(0),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.execute(Operation::Get, key, Vec::new())
    }

    pub fn set(&self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        let limit = self.config.limits.max_body_bytes;
        if value.len() as u64 > limit {
            return Err(Error::ValueTooLarge(format!(
                "the value is {} bytes; max-value-bytes is {limit}",
                value.len()
            )));
        }
        self.execute(Operation::Put, key, value).map(drop)
    }

    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.execute(Operation::Delete, key, Vec::new()).map(drop)
    }

    fn execute(
        &self,
        operation: Operation,
        key: &str,
        body: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let key = ObjectKey::new(&self.config.base_path, key)?;
        let mut request = request::build(&self.config, operation, &key, body)?;
        if operation == Operation::Put {
            integrity::add_content_md5(&mut request);
        }
        let started = self.system.monotonic();
        let mut attempts = 0;
        let mut skew_corrected = false;
        loop {
            attempts += 1;
            let error = match self.attempt(&mut request, &mut skew_corrected) {
                Ok(Attempt::Done(response)) => {
                    match response::outcome(operation, &self.config.bucket, response) {
                        Ok(value) => {
                            self.budget.deposit_success();
                            return Ok(value);
                        }
                        Err(e) => e,
                    }
                }
                Ok(Attempt::ClockCorrected) => {
                    // Not a failure of the server's: try again at once, uncounted.
                    attempts -= 1;
                    continue;
                }
                Err(e) => e,
            };
            if !retry::is_retryable(&error) {
                return Err(retry::exhausted(error, attempts, ""));
            }
            if attempts >= self.config.retry.max_attempts {
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
        }
    }

    fn attempt(
        &self,
        request: &mut http::Request<Vec<u8>>,
        skew_corrected: &mut bool,
    ) -> Result<Attempt, Error> {
        let now = self.system.now();
        sign::sign(
            request,
            &self.config.credentials,
            &self.config.region,
            shift(now, self.clock_offset_ms.get()),
        )?;
        let response = self.transport.send(request, &self.config.limits)?;
        if !*skew_corrected && let Some(offset) = response::clock_offset(&response, now) {
            *skew_corrected = true;
            self.clock_offset_ms.set(offset);
            return Ok(Attempt::ClockCorrected);
        }
        Ok(Attempt::Done(response))
    }
}

enum Attempt {
    Done(Response),
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
