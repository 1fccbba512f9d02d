//! Engine, linker and pre-instantiated component: everything loaded once and shared by the
//! stores opened from it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::{self, ComponentPre};
use crate::error::Error;
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

impl bindings::wit::Host for HostState {}

/// The compiled component, ready to instantiate. Cheap to share by reference; each
/// [`ResultStore`] gets its own instance.
pub struct Runtime {
    engine: Engine,
    pre: ComponentPre<HostState>,
    env: Vec<(String, String)>,
    clock_offset_secs: i64,
    sender: PooledSender,
}

impl Runtime {
    /// Compiles the component at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Runtime, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            Error::Runtime(wasmtime::Error::msg(format!(
                "cannot read the component {}: {e}; build it with \
                 `cargo build --release --target wasm32-wasip2 -p s3-result-store`",
                path.display()
            )))
        })?;
        Runtime::from_bytes(&bytes)
    }

    /// Compiles a component from its bytes, reusing wasmtime's on-disk compilation cache
    /// when it can (a cold compile takes seconds; a cached load, milliseconds).
    pub fn from_bytes(bytes: &[u8]) -> Result<Runtime, Error> {
        let mut config = wasmtime::Config::new();
        if let Ok(cache) = wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
            config.cache(Some(cache));
        }
        let engine = Engine::new(&config)?;
        let component = Component::new(&engine, bytes)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        bindings::wit::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        let pre = ComponentPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Runtime {
            engine,
            pre,
            env: Vec::new(),
            clock_offset_secs: 0,
            sender: PooledSender::new(),
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
        let component = self.pre.instance_pre().component();
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
    /// need this one (then without a pool). `http` endpoints only; see [`PooledSender`].
    pub fn with_connection_pool(mut self, on: bool) -> Runtime {
        self.sender = self.sender.with_connection_pool(on);
        self
    }

    /// Resolves `host_suffix` and every name under it to `ip` instead of asking DNS, e.g.
    /// `with_resolve("s3.garage.localhost", 127.0.0.1)` for virtual-hosted-style requests
    /// to `bucket.s3.garage.localhost`. `http` endpoints only; see
    /// [`PooledSender::with_resolve`].
    pub fn with_resolve(mut self, host_suffix: &str, ip: IpAddr) -> Runtime {
        self.sender = self.sender.with_resolve(host_suffix, ip);
        self
    }

    /// Opens a store: a fresh instance of the component and one `result-store` resource in it.
    pub fn open(&self, config: &s3_result_store::ConfigInput) -> Result<ResultStore, Error> {
        let (store, instance) = self.instantiate()?;
        ResultStore::open(store, instance, config)
    }

    /// Opens Celery's result backend over the bucket: a fresh instance and one `task-store`.
    /// `global_keyprefix` is Celery's `global_keyprefix` transport option.
    pub fn open_tasks(
        &self,
        config: &s3_result_store::ConfigInput,
        global_keyprefix: Option<&str>,
    ) -> Result<TaskStore, Error> {
        let (store, instance) = self.instantiate()?;
        TaskStore::open(store, instance, config, global_keyprefix)
    }

    fn instantiate(&self) -> Result<(Store<HostState>, bindings::Component), Error> {
        let mut wasi = WasiCtx::builder();
        wasi.envs(&self.env);
        if self.clock_offset_secs != 0 {
            wasi.wall_clock(OffsetClock(self.clock_offset_secs));
        }
        let wasi = wasi.build();
        let mut store = Store::new(
            &self.engine,
            HostState {
                wasi,
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                sender: (!self.sender.is_default()).then(|| self.sender.clone()),
            },
        );
        let instance = self.pre.instantiate(&mut store)?;
        Ok((store, instance))
    }
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
    if let Some(path) = std::env::var_os("S3RS_COMPONENT") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("wasm32-wasip2/release/s3_result_store.wasm")
}
