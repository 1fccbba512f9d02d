//! Celery's S3 result backend as a WebAssembly component.
//!
//! The crate is a pure core — configuration, keys, requests, signing, response parsing —
//! that compiles and is tested natively, plus a thin wasm-only layer ([`component`]) that
//! exports the WIT interface and sends the core's requests through `wasi:http`.

pub mod bulk;
pub mod calendar;
pub mod celery;
pub mod checksum;
pub mod conditional;
pub mod config;
pub mod deadline;
pub mod error;
pub mod integrity;
pub mod key;
pub mod keyvalue;
pub mod request;
pub mod response;
pub mod retry;
pub mod sign;
pub mod store;
pub mod tasks;

#[cfg(target_family = "wasm")]
mod component;

pub use config::{AddressingStyle, Config, ConfigInput, Credentials};
pub use error::{Error, S3ErrorInfo};
pub use key::ObjectKey;
pub use store::{Store, System, Transport};
