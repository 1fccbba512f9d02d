//! What one component instance holds on the host side: its WASI and WASI HTTP contexts, the
//! sender its outgoing requests go through, and a watch on its memory; and the shifted wall
//! clock an instance may be given.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::sender::PooledSender;

/// Per-instance state: WASI and WASI HTTP contexts and their resource table.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    /// The runtime's sender (a handle on its shared pool); `None`: wasmtime's default hooks.
    sender: Option<PooledSender>,
    memory: GuestMemory,
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

    /// The instance's memory watch, to install as its store's limiter.
    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.memory
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

/// Watches the instance's linear memory grow (it never shrinks): its high-water mark.
#[derive(Default)]
struct GuestMemory {
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

/// The system clock shifted by a fixed number of seconds, as on a machine whose clock is
/// wrong (`Runtime::with_clock_offset_secs`).
pub(crate) struct OffsetClock(pub(crate) i64);

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
