//! Runs the s3-result-store component under wasmtime, with a typed Rust API that mirrors its
//! WIT interface, and an embedded S3 endpoint for demos and tests.
//!
//! ```
//! use s3_result_store_host::local_s3::{LocalS3, LocalS3Options};
//! use s3_result_store_host::{ConfigInput, Runtime, default_component_path};
//!
//! // An S3 server in this process (s3s-fs, signatures checked); any S3 endpoint does as well.
//! let server = LocalS3::start(LocalS3Options::default())?;
//! server.create_bucket("celery-results")?;
//!
//! // The component, as `cargo build --release --target wasm32-wasip2 -p s3-result-store`
//! // builds it (or the file `S3RS_COMPONENT` names).
//! let runtime = Runtime::load(default_component_path())?;
//! let mut store = runtime.open(&ConfigInput {
//!     endpoint_url: Some(server.endpoint()),
//!     region: Some(server.region().into()),
//!     access_key_id: Some(server.access_key().into()),
//!     secret_access_key: Some(server.secret_key().into()),
//!     bucket_name: Some("celery-results".into()),
//!     base_path: Some("results/".into()),
//!     ..ConfigInput::default()
//! })?;
//!
//! let meta = br#"{"status": "SUCCESS", "result": 42}"#;
//! store.set("celery-task-meta-1", meta)?;
//! assert_eq!(store.get("celery-task-meta-1")?.as_deref(), Some(&meta[..]));
//! store.delete("celery-task-meta-1")?;
//! assert_eq!(store.get("celery-task-meta-1")?, None); // a missing key is none, not an error
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A [`Runtime`] compiles the component once; each store it opens ([`ResultStore`],
//! [`TaskStore`] for Celery's task results, [`KeyValueBucket`] for `wasi:keyvalue`) is an
//! instance of its own. Calls block the calling thread, which drives their requests on a
//! Tokio runtime of its own, so do not make them from inside an async task.
//! [`ProxyServer`] serves a `wasi:http/proxy` component, such as the example app composed with
//! the store. The interfaces themselves are documented in the repository's `wit/world.wit`.

mod artifacts;
mod bindings;
mod driver;
mod engine;
mod error;
pub mod keyvalue;
pub mod local_s3;
mod oci;
mod runtime;
mod sender;
mod serve;
mod source;
mod state;
mod store;
mod tasks;

pub use artifacts::{default_component_path, default_task_status_path, store_only_component_path};
pub use engine::{PoolingOptions, RuntimeOptions};
pub use error::Error;
pub use keyvalue::{Cas, Cursor, KeyPage, KeyValueBucket, KvVersion, Swap};
pub use oci::{OciCache, OciError, OciReference, PulledComponent};
pub use runtime::Runtime;
pub use s3_result_store::celery::{self, Extended, State, TaskMeta};
pub use s3_result_store::keyvalue::KvError;
pub use s3_result_store::{AddressingStyle, ConfigInput, S3ErrorInfo};
pub use sender::PooledSender;
pub use serve::{ProxyServer, Serving};
pub use source::ComponentSource;
pub use store::{ResultStore, ValueResult};
pub use tasks::TaskStore;

/// The store's own error enum (the WIT `error` variant), shared with the component's core.
pub use s3_result_store::Error as StoreError;
