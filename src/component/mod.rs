//! The wasm-only layer: WIT bindings, the export glue that maps WIT types to the core and
//! back, and the `wasi:http` transport.

#[cfg(feature = "keyvalue")]
mod keyvalue;
#[cfg(feature = "tasks")]
mod tasks;
mod transport;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{self, Config, ConfigInput};
use crate::error::{Error, S3ErrorInfo};
use crate::store::{Store, System};

/// The bindings of `$world`, one of wit/world.wit's worlds (chosen by the crate's features).
macro_rules! bindings {
    ($world:literal) => {
        wit_bindgen::generate!({
            path: "wit",
            world: $world,
            // The `wasi` crate already has these bindings; share them rather than generate
            // twins.
            with: {
                "wasi:http/types@0.2.12": wasi::http::types,
                "wasi:http/outgoing-handler@0.2.12": wasi::http::outgoing_handler,
                "wasi:io/error@0.2.12": wasi::io::error,
                "wasi:io/poll@0.2.12": wasi::io::poll,
                "wasi:io/streams@0.2.12": wasi::io::streams,
                "wasi:clocks/monotonic-clock@0.2.12": wasi::clocks::monotonic_clock,
                "wasi:clocks/wall-clock@0.2.12": wasi::clocks::wall_clock,
                "wasi:cli/environment@0.2.12": wasi::cli::environment,
                "wasi:random/insecure@0.2.12": wasi::random::insecure,
            },
        });
    };
}

#[cfg(all(feature = "tasks", feature = "keyvalue"))]
bindings!("component");
#[cfg(all(feature = "tasks", not(feature = "keyvalue")))]
bindings!("store-with-tasks");
#[cfg(all(not(feature = "tasks"), feature = "keyvalue"))]
bindings!("store-with-keyvalue");
#[cfg(not(any(feature = "tasks", feature = "keyvalue")))]
bindings!("store-only");

use exports::result_store::s3::store::{Guest, GuestResultStore, ResultStore};
use exports::result_store::s3::types as wit;

pub(crate) struct Component;

export!(Component);

impl Guest for Component {
    type ResultStore = ResultStoreResource;
}

/// The `result-store` resource: one resolved config and its transport.
pub struct ResultStoreResource {
    store: Store<transport::WasiHttp, WasiSystem>,
}

impl GuestResultStore for ResultStoreResource {
    fn open(config: wit::Config) -> Result<ResultStore, wit::Error> {
        let input = config_input(config);
        let config = Config::resolve(&input, wasi::cli::environment::get_environment())
            .map_err(wit_error)?;
        Ok(ResultStore::new(ResultStoreResource {
            store: Store::new(config, transport::WasiHttp, WasiSystem),
        }))
    }

    fn get(&self, key: String) -> Result<Option<Vec<u8>>, wit::Error> {
        self.store.get(&key).map_err(wit_error)
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<(), wit::Error> {
        self.store.set(&key, value).map_err(wit_error)
    }

    fn delete(&self, key: String) -> Result<(), wit::Error> {
        self.store.delete(&key).map_err(wit_error)
    }

    fn get_many(&self, keys: Vec<String>) -> Vec<Result<Option<Vec<u8>>, wit::Error>> {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let results = self.store.get_many(&keys);
        results.into_iter().map(|r| r.map_err(wit_error)).collect()
    }

    fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Vec<Result<(), wit::Error>> {
        let (keys, values): (Vec<String>, Vec<Vec<u8>>) = entries.into_iter().unzip();
        let results = self
            .store
            .set_many(keys.iter().map(String::as_str).zip(values).collect());
        results.into_iter().map(|r| r.map_err(wit_error)).collect()
    }

    fn delete_many(&self, keys: Vec<String>) -> Vec<Result<(), wit::Error>> {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let results = self.store.delete_many(&keys);
        results.into_iter().map(|r| r.map_err(wit_error)).collect()
    }
}

/// Time, sleep and jitter from `wasi:clocks` and `wasi:random`.
pub(crate) struct WasiSystem;

impl System for WasiSystem {
    fn now(&self) -> SystemTime {
        let now = wasi::clocks::wall_clock::now();
        UNIX_EPOCH + Duration::new(now.seconds, now.nanoseconds.min(999_999_999))
    }

    fn monotonic(&self) -> Duration {
        Duration::from_nanos(wasi::clocks::monotonic_clock::now())
    }

    fn sleep(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        wasi::clocks::monotonic_clock::subscribe_duration(nanos).block();
    }

    fn random(&self) -> u64 {
        wasi::random::insecure::get_insecure_random_u64()
    }
}

pub(crate) fn config_input(c: wit::Config) -> ConfigInput {
    ConfigInput {
        endpoint_url: c.endpoint_url,
        region: c.region,
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.session_token,
        bucket_name: c.bucket_name,
        base_path: c.base_path,
        addressing_style: match c.addressing_style {
            wit::AddressingStyle::Auto => config::AddressingStyle::Auto,
            wit::AddressingStyle::Path => config::AddressingStyle::Path,
            wit::AddressingStyle::VirtualHosted => config::AddressingStyle::VirtualHosted,
        },
        max_attempts: c.max_attempts,
        operation_timeout_ms: c.operation_timeout_ms,
        connect_timeout_ms: c.connect_timeout_ms,
        first_byte_timeout_ms: c.first_byte_timeout_ms,
        between_bytes_timeout_ms: c.between_bytes_timeout_ms,
        max_value_bytes: c.max_value_bytes,
    }
}

/// One copy for every export rather than one inlined into each: errors are the rare path.
#[inline(never)]
pub(crate) fn wit_error(e: Error) -> wit::Error {
    let info = |i: S3ErrorInfo| wit::S3Error {
        status: i.status,
        code: i.code,
        message: i.message,
        request_id: i.request_id,
    };
    match e {
        Error::MissingBucketName => wit::Error::MissingBucketName,
        Error::MissingCredentials => wit::Error::MissingCredentials,
        Error::InvalidConfig(m) => wit::Error::InvalidConfig(m),
        Error::InvalidKey(m) => wit::Error::InvalidKey(m),
        Error::ValueTooLarge(m) => wit::Error::ValueTooLarge(m),
        Error::InvalidValue(m) => wit::Error::InvalidValue(m),
        Error::NoSuchBucket(b) => wit::Error::NoSuchBucket(b),
        Error::AccessDenied(i) => wit::Error::AccessDenied(info(i)),
        Error::S3(i) => wit::Error::S3(info(i)),
        Error::Transport(m) => wit::Error::Transport(m),
        Error::Timeout(m) => wit::Error::Timeout(m),
        Error::Unsupported(m) => wit::Error::Unsupported(m),
    }
}
