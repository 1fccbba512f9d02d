//! The current-thread Tokio runtimes that calls into the component, and the requests they
//! make, run on: one [`Driver`] per thread that opens stores, kept in [`Drivers`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::ThreadId;

use crate::error::Error;
use crate::sender::PooledSender;

/// The current-thread Tokio runtime that the calls into the component, and the outgoing
/// requests they make, run on. With wasmtime's synchronous API every request would be a task
/// on wasmtime-wasi's shared multi-thread runtime, and each step of it (send, response head,
/// body, back to the pool) a wake-up of another thread; here the calling thread drives it all,
/// as a native client on its own runtime does.
///
/// One per thread (and runtime), for the stores opened on that thread, so that threads do
/// not wait on each other to drive their I/O. Each has its own connection pool: a pooled
/// connection is a task of the runtime that opened it, and only makes progress while that
/// runtime runs. A store moved to another thread keeps its driver, which is still correct.
#[derive(Clone)]
pub(crate) struct Driver(Arc<DriverRuntime>);

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

    /// The sender the instances driven here send through; `None`: wasmtime's default.
    pub(crate) fn sender(&self) -> Option<&PooledSender> {
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

thread_local! {
    /// Dropped when the thread ends: a driver's entry in [`Drivers`] watches it.
    static THREAD_ALIVE: Arc<()> = Arc::new(());
}

/// One [`Driver`] per thread that has opened stores, with whether that thread lives.
#[derive(Default)]
pub(crate) struct Drivers(Mutex<HashMap<ThreadId, (Driver, Weak<()>)>>);

impl Drivers {
    /// The calling thread's driver, made on its first store with a pool of its own from
    /// `sender` (none when `sender` is wasmtime's default).
    pub(crate) fn current(&self, sender: &PooledSender) -> Result<Driver, Error> {
        let mut drivers = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let thread = std::thread::current().id();
        if let Some((driver, _)) = drivers.get(&thread) {
            return Ok(driver.clone());
        }
        // Threads that have ended let go of their drivers (their stores keep theirs), so a
        // program that starts a thread per task does not pile up runtimes and file handles.
        drivers.retain(|_, (_, alive)| alive.strong_count() > 0);
        let sender = (!sender.is_default()).then(|| sender.with_own_pool());
        let driver = Driver::new(sender)?;
        let alive = THREAD_ALIVE.try_with(Arc::downgrade).unwrap_or_default();
        drivers.insert(thread, (driver.clone(), alive));
        Ok(driver)
    }
}
