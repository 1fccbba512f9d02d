//! Engine, linker and pre-instantiated component: everything loaded once and shared by the
//! stores opened from it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::ThreadId;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::component::{Component, Instance, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::{ExportIndices, TASKS_INTERFACE};
use crate::engine::{self, RuntimeOptions};
use crate::error::Error;
use crate::keyvalue::{KeyValueBucket, KvIndices, KvVersion};
use crate::sender::PooledSender;
use crate::store::ResultStore;
use crate::tasks::TaskStore;

/// Per-instance state: WASI and WASI HTTP contexts and their resource table.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    /// The runtime's sender (a handle on its shared pool); `None`: wasmtime's default hooks.
    sender: Option<PooledSender>,
    memory: GuestMemory,
}

/// Watches the instance's linear memory grow (it never shrinks): its high-water mark.
#[derive(Default)]
pub(crate) struct GuestMemory {
    peak: usize,
}

impl ResourceLimiter for GuestMemory {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The limits themselves are wasmtime's (and the pooling allocator's), as without a
        // limiter: this only records the size.
        let allowed = maximum.is_none_or(|max| desired <= max);
        if allowed {
            self.peak = self.peak.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|max| desired <= max))
    }
}

impl HostState {
    /// State for one instance: its WASI context, and the sender its outgoing requests go
    /// through (`None`: wasmtime's default).
    pub(crate) fn new(wasi: WasiCtx, sender: Option<PooledSender>) -> HostState {
        HostState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            sender,
            memory: GuestMemory::default(),
        }
    }

    /// The most linear memory the instance has had, in bytes.
    pub(crate) fn guest_memory_peak(&self) -> usize {
        self.memory.peak
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: match &mut self.sender {
                Some(sender) => sender,
                None => Default::default(),
            },
        }
    }
}

/// The compiled component, ready to instantiate. Cheap to share by reference; each
/// [`ResultStore`] gets its own instance.
pub struct Runtime {
    engine: Engine,
    /// One per thread that has opened stores (see [`Driver`]), with whether that thread lives.
    drivers: Mutex<HashMap<ThreadId, (Driver, Weak<()>)>>,
    pre: InstancePre<HostState>,
    exports: ExportIndices,
    env: Vec<(String, String)>,
    clock_offset_secs: i64,
    sender: PooledSender,
    /// The largest `max-value-bytes` an instance's memory allows, when it is capped (pooling).
    max_value_bytes: Option<u64>,
    /// How much one call may copy out of the instance (wasmtime's "hostcall fuel").
    hostcall_fuel: usize,
}

impl Runtime {
    /// Compiles the component at `path`, with the default [`RuntimeOptions`].
    pub fn load(path: impl AsRef<Path>) -> Result<Runtime, Error> {
        Runtime::load_with(path, &RuntimeOptions::default())
    }

    /// Compiles the component at `path` for an engine set up as `options` say.
    pub fn load_with(path: impl AsRef<Path>, options: &RuntimeOptions) -> Result<Runtime, Error> {
        Runtime::from_bytes_with(&read_component(path.as_ref())?, options)
    }

    /// Compiles a component from its bytes, reusing wasmtime's on-disk compilation cache
    /// when it can (a cold compile takes seconds; a cached load, milliseconds).
    pub fn from_bytes(bytes: &[u8]) -> Result<Runtime, Error> {
        Runtime::from_bytes_with(bytes, &RuntimeOptions::default())
    }

    /// [`Runtime::from_bytes`] for an engine set up as `options` say.
    pub fn from_bytes_with(bytes: &[u8], options: &RuntimeOptions) -> Result<Runtime, Error> {
        let engine = options.engine(true)?;
        let component = Component::new(&engine, bytes)?;
        Runtime::from_component(engine, &component, options)
    }

    /// Compiles the component at `path` to native code, once, for
    /// [`Runtime::from_precompiled`]: loading that takes a few milliseconds, where compiling
    /// takes hundreds, with no compilation cache involved. The bytes are only valid for this build of
    /// the host (the same wasmtime, target and settings); the pooling allocator does not
    /// change them, so one artifact serves every [`RuntimeOptions`].
    pub fn precompile(path: impl AsRef<Path>) -> Result<Vec<u8>, Error> {
        let engine = RuntimeOptions::default().engine(false)?;
        engine::precompile(&engine, &read_component(path.as_ref())?)
    }

    /// Loads a component that [`Runtime::precompile`] compiled, without compiling anything.
    ///
    /// The bytes are checked before wasmtime deserializes them: that `precompile` wrote
    /// them, for an engine whose code is compatible with this one (same wasmtime version,
    /// target and compiler settings), and that they are intact (a SHA-256 digest); an artifact
    /// that fails a check is an error, never loaded. Deserializing maps the bytes as
    /// executable code, so what the checks cannot tell apart from a genuine artifact, a file
    /// deliberately forged by someone able to write where it is kept, would run as native
    /// code: keep precompiled components where only the host's own deployment can write, as
    /// you would the host binary itself.
    pub fn from_precompiled(bytes: &[u8], options: &RuntimeOptions) -> Result<Runtime, Error> {
        let engine = options.engine(false)?;
        let component = engine::load(&engine, bytes)?;
        Runtime::from_component(engine, &component, options)
    }

    /// [`Runtime::from_precompiled`] from a file.
    pub fn from_precompiled_file(
        path: impl AsRef<Path>,
        options: &RuntimeOptions,
    ) -> Result<Runtime, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            Error::Runtime(wasmtime::Error::msg(format!(
                "cannot read the precompiled component {}: {e}",
                path.display()
            )))
        })?;
        Runtime::from_precompiled(&bytes, options)
    }

    fn from_component(
        engine: Engine,
        component: &Component,
        options: &RuntimeOptions,
    ) -> Result<Runtime, Error> {
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = linker.instantiate_pre(component)?;
        let exports = ExportIndices::new(&pre)?;
        Ok(Runtime {
            engine,
            drivers: Mutex::default(),
            pre,
            exports,
            env: Vec::new(),
            clock_offset_secs: 0,
            sender: PooledSender::new(),
            max_value_bytes: options.pooling_options().map(|p| p.max_value_bytes()),
            hostcall_fuel: hostcall_fuel(options),
        })
    }

    /// Environment variables the component sees (its fallback for credentials, region and
    /// endpoint). Empty unless set: the host's own environment is never passed implicitly.
    pub fn with_env<I, K, V>(mut self, env: I) -> Runtime
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env = env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self
    }

    /// Names of the component's imports and exports (`wasi:http/outgoing-handler@0.2.12`, ...).
    pub fn interface(&self) -> (Vec<String>, Vec<String>) {
        let component = self.pre.component();
        let ty = component.component_type();
        let names = |it: &mut dyn Iterator<Item = &str>| it.map(str::to_owned).collect();
        (
            names(&mut ty.imports(&self.engine).map(|(n, _)| n)),
            names(&mut ty.exports(&self.engine).map(|(n, _)| n)),
        )
    }

    /// Shifts the wall clock the component sees by `secs` (negative: behind), as on a machine
    /// whose clock is wrong; for exercising the component's clock-skew correction.
    pub fn with_clock_offset_secs(mut self, secs: i64) -> Runtime {
        self.clock_offset_secs = secs;
        self
    }

    /// Whether the stores of this runtime share a pool of keep-alive connections (default: on),
    /// so that a sequence of operations pays one connect. Off, every request opens a new
    /// connection: wasmtime's default sender is used, unless [`Runtime::with_resolve`] rules
    /// need this one (then without a pool). See [`PooledSender`].
    pub fn with_connection_pool(mut self, on: bool) -> Runtime {
        self.sender = self.sender.with_connection_pool(on);
        self.drivers = Mutex::default();
        self
    }

    /// Whether the host applies the timeouts the component sets on each request (default:
    /// yes). Off, this host acts as one that ignores them; the component's own deadlines
    /// still end every operation in time. See [`PooledSender::with_request_timeouts`].
    pub fn with_request_timeouts(mut self, on: bool) -> Runtime {
        self.sender = self.sender.with_request_timeouts(on);
        self.drivers = Mutex::default();
        self
    }

    /// Resolves `host_suffix` and every name under it to `ip` instead of asking DNS, e.g.
    /// `with_resolve("s3.garage.localhost", 127.0.0.1)` for virtual-hosted-style requests
    /// to `bucket.s3.garage.localhost`. See [`PooledSender::with_resolve`].
    pub fn with_resolve(mut self, host_suffix: &str, ip: IpAddr) -> Runtime {
        self.sender = self.sender.with_resolve(host_suffix, ip);
        self.drivers = Mutex::default();
        self
    }

    /// Trusts the CA certificates in `pem` for `https` endpoints, besides the Mozilla roots
    /// (for a server with a private CA; the CLI reads `AWS_CA_BUNDLE`). See
    /// [`PooledSender::with_root_certificates_pem`]; fails when `pem` has no usable
    /// certificate.
    pub fn with_root_certificates_pem(mut self, pem: &[u8]) -> Result<Runtime, Error> {
        self.sender = self.sender.with_root_certificates_pem(pem)?;
        self.drivers = Mutex::default();
        Ok(self)
    }

    /// HTTP requests the stores of this runtime have sent, every attempt counted (see
    /// [`PooledSender::requests_sent`]); `None` when wasmtime's default sender is in use
    /// (pool off and no resolver rules), which keeps no count.
    pub fn requests_sent(&self) -> Option<u64> {
        (!self.sender.is_default()).then(|| self.sender.requests_sent())
    }

    /// Opens a store: a fresh instance of the component and one `result-store` resource in it.
    pub fn open(&self, config: &s3_result_store::ConfigInput) -> Result<ResultStore, Error> {
        let config = self.fit_to_memory(config)?;
        let (mut store, instance, driver) = self.instantiate()?;
        let guest = self.exports.store.load(&mut store, &instance)?;
        ResultStore::open(store, guest, driver, &config)
    }

    /// Opens Celery's result backend over the bucket: a fresh instance and one `task-store`.
    /// `global_keyprefix` is Celery's `global_keyprefix` transport option.
    pub fn open_tasks(
        &self,
        config: &s3_result_store::ConfigInput,
        global_keyprefix: Option<&str>,
    ) -> Result<TaskStore, Error> {
        let indices = self.exports.tasks.as_ref().ok_or(Error::NotExported {
            interface: TASKS_INTERFACE,
            feature: "tasks",
        })?;
        let config = self.fit_to_memory(config)?;
        let (mut store, instance, driver) = self.instantiate()?;
        let guest = indices.load(&mut store, &instance)?;
        TaskStore::open(store, guest, driver, &config, global_keyprefix)
    }

    /// Opens a `wasi:keyvalue` bucket at `version`: a fresh instance and one `bucket`.
    /// `identifier` is `bucket`, `bucket/prefix` or `s3://bucket/prefix`; endpoint, region and
    /// credentials come from the environment given with [`Runtime::with_env`].
    pub fn open_keyvalue(
        &self,
        version: KvVersion,
        identifier: &str,
    ) -> Result<KeyValueBucket, Error> {
        let indices = match version {
            KvVersion::Draft => self.exports.kv_draft.as_ref().map(KvIndices::Draft),
            KvVersion::Draft2 => self.exports.kv_draft2.as_ref().map(KvIndices::Draft2),
        };
        let indices = indices.ok_or(Error::NotExported {
            interface: version.store_interface(),
            feature: "keyvalue",
        })?;
        let (mut store, instance, driver) = self.instantiate()?;
        let guests = indices.load(&mut store, &instance)?;
        KeyValueBucket::open(store, guests, driver, identifier)
    }

    /// Under a memory cap (pooling), `max-value-bytes` defaults to what an instance can hold,
    /// and a larger setting is refused here rather than trapping in the middle of a call.
    fn fit_to_memory<'a>(
        &self,
        config: &'a s3_result_store::ConfigInput,
    ) -> Result<Cow<'a, s3_result_store::ConfigInput>, Error> {
        let Some(limit) = self.max_value_bytes else {
            return Ok(Cow::Borrowed(config));
        };
        match config.max_value_bytes {
            Some(asked) if asked > limit => Err(Error::Store(
                s3_result_store::Error::InvalidConfig(format!(
                    "max-value-bytes is {asked}; this runtime's instances can hold values of at \
                     most {limit} bytes (half of PoolingOptions::max_memory_bytes)"
                )),
            )),
            Some(_) => Ok(Cow::Borrowed(config)),
            None => {
                let default = s3_result_store::config::DEFAULT_MAX_VALUE_BYTES;
                let mut config = config.clone();
                config.max_value_bytes = Some(default.min(limit));
                Ok(Cow::Owned(config))
            }
        }
    }

    /// The calling thread's driver, made on its first store.
    fn driver(&self) -> Result<Driver, Error> {
        let mut drivers = self.drivers.lock().unwrap_or_else(PoisonError::into_inner);
        let thread = std::thread::current().id();
        if let Some((driver, _)) = drivers.get(&thread) {
            return Ok(driver.clone());
        }
        // Threads that have ended let go of their drivers (their stores keep theirs), so a
        // program that starts a thread per task does not pile up runtimes and file handles.
        drivers.retain(|_, (_, alive)| alive.strong_count() > 0);
        let sender = (!self.sender.is_default()).then(|| self.sender.with_own_pool());
        let driver = Driver::new(sender)?;
        let alive = THREAD_ALIVE.try_with(Arc::downgrade).unwrap_or_default();
        drivers.insert(thread, (driver.clone(), alive));
        Ok(driver)
    }

    fn instantiate(&self) -> Result<(Store<HostState>, Instance, Driver), Error> {
        let driver = self.driver()?;
        let mut wasi = WasiCtx::builder();
        wasi.envs(&self.env);
        if self.clock_offset_secs != 0 {
            wasi.wall_clock(OffsetClock(self.clock_offset_secs));
        }
        let wasi = wasi.build();
        let mut store = Store::new(&self.engine, HostState::new(wasi, driver.sender().cloned()));
        store.limiter(|state| &mut state.memory);
        store.set_hostcall_fuel(self.hostcall_fuel);
        let instance = driver.run(self.pre.instantiate_async(&mut store))?;
        Ok((store, instance, driver))
    }
}

/// The current-thread Tokio runtime that the calls into the component, and the outgoing
/// requests they make, run on. With wasmtime's synchronous API every request would be a task
/// on wasmtime-wasi's shared multi-thread runtime, and each step of it (send, response head,
/// body, back to the pool) a wake-up of another thread; here the calling thread drives it all,
/// as a native client on its own runtime does.
///
/// One per thread (and [`Runtime`]), for the stores opened on that thread, so that threads do
/// not wait on each other to drive their I/O. Each has its own connection pool: a pooled
/// connection is a task of the runtime that opened it, and only makes progress while that
/// runtime runs. A store moved to another thread keeps its driver, which is still correct.
#[derive(Clone)]
pub(crate) struct Driver(Arc<DriverRuntime>);

thread_local! {
    /// Dropped when the thread ends: a driver's entry in [`Runtime`] watches it.
    static THREAD_ALIVE: Arc<()> = Arc::new(());
}

struct DriverRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    /// The runtime's sender with a pool of this driver's own; `None`: wasmtime's default.
    sender: Option<PooledSender>,
}

impl Driver {
    fn new(sender: Option<PooledSender>) -> Result<Driver, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Error::Runtime(wasmtime::Error::msg(format!(
                    "cannot start the I/O runtime: {e}"
                )))
            })?;
        Ok(Driver(Arc::new(DriverRuntime {
            runtime: Some(runtime),
            sender,
        })))
    }

    /// Runs `future` to completion on the calling thread. Like any blocking call, not from
    /// inside an async context (Tokio refuses, as it did wasmtime's synchronous calls).
    pub(crate) fn run<F: Future>(&self, future: F) -> F::Output {
        match &self.0.runtime {
            Some(runtime) => runtime.block_on(future),
            None => unreachable!("the runtime is only taken when dropped"),
        }
    }

    fn sender(&self) -> Option<&PooledSender> {
        self.0.sender.as_ref()
    }

    /// Whether [`Driver::run`] may block here: not inside another Tokio runtime. For drops,
    /// which must not panic.
    pub(crate) fn can_run(&self) -> bool {
        tokio::runtime::Handle::try_current().is_err()
    }
}

impl Drop for DriverRuntime {
    fn drop(&mut self) {
        // A plain drop panics when the last store goes away inside an async context.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// wasmtime stops a call that copies more than its "hostcall fuel" (128 MiB by default) out
/// of an instance, so a `get` of a larger value (the default limit is 256 MiB) would fail. The
/// fuel guards a host against a hostile guest; this guest is the host's own component, and
/// what it hands over must sit in its memory at the time, so that memory's bound (4 GiB for
/// wasm32, or the pool's cap) is the bound here too.
fn hostcall_fuel(options: &RuntimeOptions) -> usize {
    let memory = options
        .pooling_options()
        .map_or(1 << 32, |p| p.max_memory_bytes);
    usize::try_from(memory).unwrap_or(usize::MAX)
}

fn read_component(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        Error::Runtime(wasmtime::Error::msg(format!(
            "cannot read the component {}: {e}; build it with \
             `cargo build --release --target wasm32-wasip2 -p s3-result-store`",
            path.display()
        )))
    })
}

/// The system clock shifted by a fixed number of seconds.
struct OffsetClock(i64);

impl wasmtime_wasi::HostWallClock for OffsetClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let shift = Duration::from_secs(self.0.unsigned_abs());
        if self.0 >= 0 {
            now.saturating_add(shift)
        } else {
            now.saturating_sub(shift)
        }
    }
}

/// Where `cargo build --release --target wasm32-wasip2` puts the component in this workspace,
/// unless `S3RS_COMPONENT` names another file.
pub fn default_component_path() -> PathBuf {
    workspace_artifact(
        "S3RS_COMPONENT",
        "wasm32-wasip2/release/s3_result_store.wasm",
    )
}

/// Where `scripts/build-components` puts the store-only build of the component
/// (`--no-default-features`: `result-store:s3/store` alone), in a target directory of its own,
/// unless `S3RS_COMPONENT_STORE_ONLY` names another file.
pub fn store_only_component_path() -> PathBuf {
    workspace_artifact(
        "S3RS_COMPONENT_STORE_ONLY",
        "store-only/wasm32-wasip2/release/s3_result_store.wasm",
    )
}

/// The file `variable` names, else `path` under this workspace's target directory
/// (`CARGO_TARGET_DIR` when set).
pub(crate) fn workspace_artifact(variable: &str, path: &str) -> PathBuf {
    if let Some(file) = std::env::var_os(variable) {
        return PathBuf::from(file);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join(path)
}
