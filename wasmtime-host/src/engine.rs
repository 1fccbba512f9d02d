//! How the runtime's wasmtime engine is set up ([`RuntimeOptions`], [`PoolingOptions`]), and
//! the precompiled-component artifact that [`crate::Runtime::precompile`] writes and
//! [`crate::Runtime::from_precompiled`] checks before it lets wasmtime deserialize it.

use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Precompiled};

use crate::error::Error;

/// How a [`crate::Runtime`] allocates instances and compiles the component.
///
/// ```no_run
/// use s3_result_store_host::{PoolingOptions, Runtime, RuntimeOptions, default_component_path};
///
/// let options = RuntimeOptions::new().pooling(PoolingOptions::default());
/// let runtime = Runtime::load_with(default_component_path(), &options)?;
/// # Ok::<(), s3_result_store_host::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    pooling: Option<PoolingOptions>,
    compilation_cache: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            pooling: None,
            compilation_cache: true,
        }
    }
}

impl RuntimeOptions {
    /// The defaults: wasmtime's on-demand instance allocator, and its on-disk compilation cache.
    pub fn new() -> RuntimeOptions {
        RuntimeOptions::default()
    }

    /// Instances come from a pool of pre-reserved slots (wasmtime's pooling allocator) rather
    /// than being mapped afresh for every store: opening a store is several times faster, at
    /// the price of a fixed cap on the stores open at once and on each one's memory.
    pub fn pooling(mut self, pooling: PoolingOptions) -> RuntimeOptions {
        self.pooling = Some(pooling);
        self
    }

    /// Whether [`crate::Runtime::load_with`] and [`crate::Runtime::from_bytes_with`] reuse
    /// wasmtime's on-disk compilation cache (default: on). Off, every load compiles.
    pub fn compilation_cache(mut self, on: bool) -> RuntimeOptions {
        self.compilation_cache = on;
        self
    }

    /// The pooling settings, if the pooling allocator is on.
    pub fn pooling_options(&self) -> Option<&PoolingOptions> {
        self.pooling.as_ref()
    }

    pub(crate) fn engine(&self, with_cache: bool) -> Result<Engine, Error> {
        let mut config = wasmtime::Config::new();
        if with_cache
            && self.compilation_cache
            && let Ok(cache) = wasmtime::Cache::new(wasmtime::CacheConfig::new())
        {
            config.cache(Some(cache));
        }
        if let Some(pooling) = &self.pooling {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling.config()?));
        }
        #[cfg(feature = "profiling")]
        if std::env::var_os("S3RS_WASMTIME_PROFILER").is_some_and(|v| v == "perfmap") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        Ok(Engine::new(&config)?)
    }
}

/// The pooling allocator's limits. Each open store is one component instance, which holds one
/// slot until it is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolingOptions {
    /// Stores open at once (default 64); opening one more fails until another is dropped.
    pub max_instances: u32,
    /// The most linear memory one instance may grow to (default 512 MiB). A value being set or
    /// got lives in the instance's memory, so this bounds the values: under pooling, a store's
    /// `max-value-bytes` defaults to half of it (256 MiB by default, the component's own
    /// default), and a larger setting is refused when the store is opened. Virtual address
    /// space is reserved for every slot whatever this is (wasmtime's `memory_reservation`, 4 GiB
    /// on 64-bit hosts), so it costs no memory until used.
    pub max_memory_bytes: u64,
    /// Bytes at the start of each slot's memory kept mapped when an instance is dropped, and
    /// zeroed with `memset` rather than handed back to the kernel (default 0: all of it is
    /// handed back, and the next instance takes page faults instead).
    pub keep_resident_bytes: u64,
}

impl Default for PoolingOptions {
    fn default() -> Self {
        PoolingOptions {
            max_instances: 64,
            max_memory_bytes: 512 << 20,
            keep_resident_bytes: 0,
        }
    }
}

/// Core instances, memories and tables in one instance of the component: its main module
/// (one memory, one table) and the two small modules `wit-component` adds to lower imports
/// (one table). Kept with some room, since a rebuilt component may differ a little.
const CORE_INSTANCES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 4;

impl PoolingOptions {
    fn config(&self) -> Result<PoolingAllocationConfig, Error> {
        let usize_of = |bytes: u64, what: &str| {
            usize::try_from(bytes).map_err(|_| {
                Error::Runtime(wasmtime::Error::msg(format!(
                    "pooling: {what} of {bytes} bytes is too large for this host"
                )))
            })
        };
        let n = self.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .total_memories(n)
            .total_tables(n.saturating_mul(TABLES_PER_COMPONENT))
            .max_memory_size(usize_of(self.max_memory_bytes, "max_memory_bytes")?)
            .linear_memory_keep_resident(usize_of(self.keep_resident_bytes, "keep_resident_bytes")?)
            // Never more warm slots than there can be instances.
            .max_unused_warm_slots(n);
        Ok(pool)
    }

    /// The largest `max-value-bytes` a store of this runtime can honour: half the instance's
    /// memory, the other half being room for the component's own allocations (a value may be
    /// in memory once as a whole and once in pieces while it is read or written).
    pub fn max_value_bytes(&self) -> u64 {
        self.max_memory_bytes / 2
    }
}

/// The header of a precompiled artifact: this magic, the engine's compatibility hash and the
/// SHA-256 of the wasmtime artifact that follows.
const MAGIC: &[u8; 8] = b"s3rs-pc1";
const HEADER_LEN: usize = MAGIC.len() + 8 + 32;

/// A hash of everything that makes wasmtime's compiled code valid for an engine: wasmtime's
/// version, the target, and the compiler and memory settings. Stable within one build of the
/// host, which is all the check needs.
fn engine_hash(engine: &Engine) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

/// Compiles `component` (a `.wasm` component's bytes) for `engine`, ready for [`load`].
pub(crate) fn precompile(engine: &Engine, component: &[u8]) -> Result<Vec<u8>, Error> {
    let artifact = engine.precompile_component(component)?;
    let mut out = Vec::with_capacity(HEADER_LEN + artifact.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&engine_hash(engine).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&artifact));
    out.extend_from_slice(&artifact);
    Ok(out)
}

/// Loads what [`precompile`] wrote, after checking that it is one of ours, made by an engine
/// compatible with `engine`, and intact.
pub(crate) fn load(engine: &Engine, bytes: &[u8]) -> Result<Component, Error> {
    let refuse = |why: &str| Error::Runtime(wasmtime::Error::msg(why.to_owned()));
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(refuse(
            "not a precompiled s3-result-store component (Runtime::precompile writes them)",
        ));
    }
    let (hash, rest) = bytes[MAGIC.len()..].split_at(8);
    let (digest, artifact) = rest.split_at(32);
    if hash != engine_hash(engine).to_le_bytes() {
        return Err(refuse(
            "the component was precompiled by another wasmtime version or engine configuration; \
             precompile it again with this host",
        ));
    }
    if Sha256::digest(artifact).as_slice() != digest {
        return Err(refuse(
            "the precompiled component is damaged (its digest does not match)",
        ));
    }
    if Engine::detect_precompiled(artifact) != Some(Precompiled::Component) {
        return Err(refuse(
            "the precompiled artifact is not a wasmtime component",
        ));
    }
    // SAFETY: wasmtime's requirement is that the bytes are an artifact it produced itself
    // (`Engine::precompile_component`) and that nothing altered them since. The header says
    // this host's `precompile` wrote them, for an engine with the same compatibility hash,
    // and the digest says they are the bytes it wrote; wasmtime itself checks again that its
    // version and settings match. What no check can rule out is a forged file, written to
    // look like ours by someone able to write where precompiled components are kept: such
    // storage must be as trusted as the host binary (see `Runtime::from_precompiled`).
    Ok(unsafe { Component::deserialize(engine, artifact)? })
}
