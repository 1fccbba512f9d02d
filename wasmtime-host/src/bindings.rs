//! Host bindings for the component's world, and the conversions between its WIT types and
//! the core crate's types (so both sides share one config type and one error enum).

use s3_result_store::{AddressingStyle, ConfigInput, Error, S3ErrorInfo};
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{AsContextMut, Result};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "component",
    // The imports are provided by wasmtime-wasi and wasmtime-wasi-http; only map their types.
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:cli": wasmtime_wasi::p2::bindings::cli,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
    },
    // Called through the async API on a current-thread Tokio runtime (see `runtime::Driver`).
    exports: { default: async },
    require_store_data_send: true,
});

pub use exports::result_store::s3::types as wit;
pub use exports::result_store::s3::{store, tasks};
pub use exports::wasi::keyvalue0_2_0_draft as kv_draft;
pub use exports::wasi::keyvalue0_2_0_draft2 as kv_draft2;

/// The name of the tasks interface, as the component exports it.
pub(crate) const TASKS_INTERFACE: &str = "result-store:s3/tasks@0.1.0";
/// The names of the `wasi:keyvalue` store interfaces, as the component exports them.
pub(crate) const KV_DRAFT_STORE_INTERFACE: &str = "wasi:keyvalue/store@0.2.0-draft";
pub(crate) const KV_DRAFT2_STORE_INTERFACE: &str = "wasi:keyvalue/store@0.2.0-draft2";

/// Where the exports the host calls are, found once per runtime. The world's `ComponentPre`
/// would demand all of them; a component built without some features (wit/world.wit) has
/// only the store, so the others are looked up one interface at a time and may be `None`.
pub(crate) struct ExportIndices {
    pub store: store::GuestIndices,
    pub tasks: Option<tasks::GuestIndices>,
    pub kv_draft: Option<KvDraftIndices>,
    pub kv_draft2: Option<KvDraft2Indices>,
}

impl ExportIndices {
    pub fn new<T>(pre: &InstancePre<T>) -> Result<ExportIndices> {
        Ok(ExportIndices {
            store: store::GuestIndices::new(pre)?,
            tasks: optional(pre, TASKS_INTERFACE, tasks::GuestIndices::new)?,
            kv_draft: optional(pre, KV_DRAFT_STORE_INTERFACE, KvDraftIndices::new)?,
            kv_draft2: optional(pre, KV_DRAFT2_STORE_INTERFACE, KvDraft2Indices::new)?,
        })
    }
}

/// `None` when the component does not export `interface` (built without its feature); an
/// error when it does but not as this host's WIT has it, which no feature explains.
fn optional<T, I>(
    pre: &InstancePre<T>,
    interface: &str,
    indices: impl FnOnce(&InstancePre<T>) -> Result<I>,
) -> Result<Option<I>> {
    match pre.component().get_export_index(None, interface) {
        None => Ok(None),
        Some(_) => indices(pre).map(Some),
    }
}

/// The three `wasi:keyvalue` interfaces of one draft: store, batch and atomics.
pub(crate) struct KvGuests<S, B, A> {
    pub store: S,
    pub batch: B,
    pub atomics: A,
}

macro_rules! kv_indices {
    ($name:ident, $draft:ident) => {
        pub(crate) type $name = KvGuests<
            $draft::store::GuestIndices,
            $draft::batch::GuestIndices,
            $draft::atomics::GuestIndices,
        >;

        impl $name {
            fn new<T>(pre: &InstancePre<T>) -> Result<$name> {
                Ok(KvGuests {
                    store: $draft::store::GuestIndices::new(pre)?,
                    batch: $draft::batch::GuestIndices::new(pre)?,
                    atomics: $draft::atomics::GuestIndices::new(pre)?,
                })
            }

            pub fn load(
                &self,
                mut store: impl AsContextMut,
                instance: &Instance,
            ) -> Result<KvGuests<$draft::store::Guest, $draft::batch::Guest, $draft::atomics::Guest>>
            {
                Ok(KvGuests {
                    store: self.store.load(&mut store, instance)?,
                    batch: self.batch.load(&mut store, instance)?,
                    atomics: self.atomics.load(&mut store, instance)?,
                })
            }
        }
    };
}

kv_indices!(KvDraftIndices, kv_draft);
kv_indices!(KvDraft2Indices, kv_draft2);

pub fn wit_config(c: &ConfigInput) -> wit::Config {
    wit::Config {
        endpoint_url: c.endpoint_url.clone(),
        region: c.region.clone(),
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        session_token: c.session_token.clone(),
        bucket_name: c.bucket_name.clone(),
        base_path: c.base_path.clone(),
        addressing_style: match c.addressing_style {
            AddressingStyle::Auto => wit::AddressingStyle::Auto,
            AddressingStyle::Path => wit::AddressingStyle::Path,
            AddressingStyle::VirtualHosted => wit::AddressingStyle::VirtualHosted,
        },
        max_attempts: c.max_attempts,
        operation_timeout_ms: c.operation_timeout_ms,
        connect_timeout_ms: c.connect_timeout_ms,
        first_byte_timeout_ms: c.first_byte_timeout_ms,
        between_bytes_timeout_ms: c.between_bytes_timeout_ms,
        max_value_bytes: c.max_value_bytes,
    }
}

pub fn core_error(e: wit::Error) -> Error {
    let info = |i: wit::S3Error| S3ErrorInfo {
        status: i.status,
        code: i.code,
        message: i.message,
        request_id: i.request_id,
    };
    match e {
        wit::Error::MissingBucketName => Error::MissingBucketName,
        wit::Error::MissingCredentials => Error::MissingCredentials,
        wit::Error::InvalidConfig(m) => Error::InvalidConfig(m),
        wit::Error::InvalidKey(m) => Error::InvalidKey(m),
        wit::Error::ValueTooLarge(m) => Error::ValueTooLarge(m),
        wit::Error::InvalidValue(m) => Error::InvalidValue(m),
        wit::Error::NoSuchBucket(b) => Error::NoSuchBucket(b),
        wit::Error::AccessDenied(i) => Error::AccessDenied(info(i)),
        wit::Error::S3(i) => Error::S3(info(i)),
        wit::Error::Transport(m) => Error::Transport(m),
        wit::Error::Timeout(m) => Error::Timeout(m),
        wit::Error::Unsupported(m) => Error::Unsupported(m),
    }
}
