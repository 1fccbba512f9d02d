//! One store operation from start to finish, over an injected transport and clock: the only
//! place where key, request, signature, response and error mapping come together.

use std::time::SystemTime;

use crate::config::Config;
use crate::error::Error;
use crate::key::ObjectKey;
use crate::request::{self, Operation};
use crate::response::{self, Response};
use crate::sign;

/// Sends one signed request and returns the whole response. Implemented over `wasi:http` in
/// the component; errors are `Error::Transport` or `Error::Timeout`.
pub trait Transport {
    fn send(&self, request: http::Request<Vec<u8>>) -> Result<Response, Error>;
}

/// Wall-clock time for signatures.
pub trait Clock {
    fn now(&self) -> SystemTime;
}

/// The result store over one bucket.
pub struct Store<T, C> {
    config: Config,
    transport: T,
    clock: C,
}

impl<T: Transport, C: Clock> Store<T, C> {
    pub fn new(config: Config, transport: T, clock: C) -> Self {
        Store {
            config,
            transport,
            clock,
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

    fn execute(
        &self,
        operation: Operation,
        key: &str,
        body: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let key = ObjectKey::new(&self.config.base_path, key)?;
        let mut request = request::build(&self.config, operation, &key, body)?;
        sign::sign(
            &mut request,
            &self.config.credentials,
            &self.config.region,
            self.clock.now(),
        )?;
        let response = self.transport.send(request)?;
        response::outcome(operation, &self.config.bucket, response)
    }
}
