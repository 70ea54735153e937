//! [`CoordRuntime`]: a dedicated OS thread with its own current-thread tokio runtime, where
//! the coordinator client and the membership loop live.
//!
//! Why: on the daemon's shared runtime a burst of request handling (thousands of JSON
//! answers, a flood of syslog) can keep every worker thread busy for seconds; a lease
//! renewal or a step-down deadline waiting behind it is late, and the instance loses its
//! activity for nothing. On its own thread the loop is scheduled by the kernel beside the
//! request workers, whatever they do.
//!
//! What must be opened here: the coordinator ([`CoordRuntime::connect`]), so that the etcd
//! client's connection tasks and lease keep-alive streams run on this runtime (other
//! runtimes reach them through channels), and the membership (call
//! [`Coordinator::join`](crate::Coordinator::join) from a future spawned here, so its loop
//! runs here). The embedded backend's SQLite calls run on this runtime's blocking pool.

use crate::api::{CoordError, Coordinator};
use mware_config::Site;
use std::future::Future;
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The dedicated runtime. Dropping it stops the thread (its tasks are dropped).
pub struct CoordRuntime {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl CoordRuntime {
    /// Starts the thread `mware-coord` and its runtime (timers and I/O enabled).
    pub fn start() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new().name("mware-coord".into()).spawn(move || {
            // Runs the spawned tasks until the owner stops (or drops) us.
            let _ = rt.block_on(stopped);
        })?;
        Ok(CoordRuntime { handle, stop: Some(stop) })
    }

    /// The runtime's handle, to spawn tasks on it.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `f` on the dedicated runtime and waits for its result from any runtime.
    pub async fn run<F>(&self, f: F) -> Result<F::Output, CoordError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(f).await.map_err(|e| CoordError::Unavailable(format!("the coordinator thread stopped: {e}")))
    }

    /// Opens the backend the site file names, on the dedicated runtime.
    pub async fn connect(&self, site: &Site) -> Result<Arc<dyn Coordinator>, CoordError> {
        let site = site.clone();
        self.run(async move { crate::connect(&site).await }).await?
    }
}

impl Drop for CoordRuntime {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A timer on the dedicated runtime fires on time while every worker of the caller's
    /// runtime is kept busy (the situation of a daemon serialising large answers).
    #[test]
    fn timers_fire_while_the_callers_runtime_is_blocked() {
        let caller = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let coord = CoordRuntime::start().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let start = Instant::now();
        coord.handle().spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(start.elapsed());
        });
        caller.block_on(async {
            // Blocks the caller's only worker for 600 ms without yielding.
            std::thread::sleep(Duration::from_millis(600));
        });
        let fired = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(fired < Duration::from_millis(400), "the timer fired after {fired:?}");
        let on_coord = caller.block_on(coord.run(async { std::thread::current().name().map(str::to_string) })).unwrap();
        assert_eq!(on_coord.as_deref(), Some("mware-coord"));
    }
}
