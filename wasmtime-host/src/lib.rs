//! Runs the s3-result-store component under wasmtime, with a typed Rust API that mirrors its
//! WIT interface, and an embedded S3 endpoint for demos and tests.
//!
//! ```no_run
//! use s3_result_store_host::{ConfigInput, Runtime, default_component_path};
//!
//! let runtime = Runtime::load(default_component_path())?;
//! let mut store = runtime.open(&ConfigInput {
//!     endpoint_url: Some("http://127.0.0.1:9000".into()),
//!     bucket_name: Some("results".into()),
//!     access_key_id: Some("minioadmin".into()),
//!     secret_access_key: Some("minioadmin".into()),
//!     ..ConfigInput::default()
//! })?;
//! store.set("celery-task-meta-1", br#"{"status": "SUCCESS"}"#)?;
//! assert!(store.get("celery-task-meta-1")?.is_some());
//! # Ok::<(), s3_result_store_host::Error>(())
//! ```
//!
//! Calls block the calling thread (wasmtime-wasi's sync bindings run their own Tokio runtime),
//! so do not call them from inside an async task.

mod bindings;
mod engine;
mod error;
pub mod keyvalue;
pub mod local_s3;
mod oci;
mod runtime;
mod sender;
mod serve;
mod source;
mod store;
mod tasks;

pub use engine::{PoolingOptions, RuntimeOptions};
pub use error::Error;
pub use keyvalue::{Cas, Cursor, KeyPage, KeyValueBucket, KvVersion, Swap};
pub use oci::{OciCache, OciError, OciReference, PulledComponent};
pub use runtime::{Runtime, default_component_path, store_only_component_path};
pub use s3_result_store::celery::{self, Extended, State, TaskMeta};
pub use s3_result_store::keyvalue::KvError;
pub use s3_result_store::{AddressingStyle, ConfigInput, S3ErrorInfo};
pub use sender::PooledSender;
pub use serve::{ProxyServer, Serving, default_task_status_path};
pub use source::ComponentSource;
pub use store::{ResultStore, ValueResult};
pub use tasks::TaskStore;

/// The store's own error enum (the WIT `error` variant), shared with the component's core.
pub use s3_result_store::Error as StoreError;
