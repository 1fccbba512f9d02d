//! Engine, linker and pre-instantiated component: everything loaded once and shared by the
//! stores opened from it.

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::Path;

use wasmtime::component::{Component, Instance, InstancePre, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;

use crate::artifacts::read_component;
use crate::bindings::{ExportIndices, TASKS_INTERFACE};
use crate::driver::{Driver, Drivers};
use crate::engine::{self, RuntimeOptions};
use crate::error::Error;
use crate::keyvalue::{KeyValueBucket, KvIndices, KvVersion};
use crate::sender::PooledSender;
use crate::state::{HostState, OffsetClock};
use crate::store::ResultStore;
use crate::tasks::TaskStore;

/// The compiled component, ready to instantiate. Cheap to share by reference; each
/// [`ResultStore`] gets its own instance.
pub struct Runtime {
    engine: Engine,
    /// The calling threads' I/O runtimes (see [`Driver`]).
    drivers: Drivers,
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
        Runtime::from_bytes_with(&read_component(path.as_ref(), BUILD_HINT)?, options)
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
        engine::precompile(&engine, &read_component(path.as_ref(), BUILD_HINT)?)
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
            drivers: Drivers::default(),
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
        self.drivers = Drivers::default();
        self
    }

    /// Whether the host applies the timeouts the component sets on each request (default:
    /// yes). Off, this host acts as one that ignores them; the component's own deadlines
    /// still end every operation in time. See [`PooledSender::with_request_timeouts`].
    pub fn with_request_timeouts(mut self, on: bool) -> Runtime {
        self.sender = self.sender.with_request_timeouts(on);
        self.drivers = Drivers::default();
        self
    }

    /// Resolves `host_suffix` and every name under it to `ip` instead of asking DNS, e.g.
    /// `with_resolve("s3.garage.localhost", 127.0.0.1)` for virtual-hosted-style requests
    /// to `bucket.s3.garage.localhost`. See [`PooledSender::with_resolve`].
    pub fn with_resolve(mut self, host_suffix: &str, ip: IpAddr) -> Runtime {
        self.sender = self.sender.with_resolve(host_suffix, ip);
        self.drivers = Drivers::default();
        self
    }

    /// Trusts the CA certificates in `pem` for `https` endpoints, besides the Mozilla roots
    /// (for a server with a private CA; the CLI reads `AWS_CA_BUNDLE`). See
    /// [`PooledSender::with_root_certificates_pem`]; fails when `pem` has no usable
    /// certificate.
    pub fn with_root_certificates_pem(mut self, pem: &[u8]) -> Result<Runtime, Error> {
        self.sender = self.sender.with_root_certificates_pem(pem)?;
        self.drivers = Drivers::default();
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

    fn instantiate(&self) -> Result<(Store<HostState>, Instance, Driver), Error> {
        let driver = self.drivers.current(&self.sender)?;
        let mut wasi = WasiCtx::builder();
        wasi.envs(&self.env);
        if self.clock_offset_secs != 0 {
            wasi.wall_clock(OffsetClock(self.clock_offset_secs));
        }
        let wasi = wasi.build();
        let mut store = Store::new(&self.engine, HostState::new(wasi, driver.sender().cloned()));
        store.limiter(|state| state.limiter());
        store.set_hostcall_fuel(self.hostcall_fuel);
        let instance = driver.run(self.pre.instantiate_async(&mut store))?;
        Ok((store, instance, driver))
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

/// How to make the component that [`Runtime::load`] did not find.
const BUILD_HINT: &str =
    "build it with `cargo build --release --target wasm32-wasip2 -p s3-result-store`";
