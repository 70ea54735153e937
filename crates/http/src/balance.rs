//! Accepting threads that share one listening socket, each taking a new connection only
//! while it holds no more connections than any of the others: the connections of a
//! client with a fixed pool (a SIP server's, or wrk's) end up spread evenly, whatever
//! the order they arrive in. nginx's workers share one accept queue the same way; with
//! one `SO_REUSEPORT` socket per thread the kernel spreads connections by a hash of
//! their addresses instead (64 connections over two threads: 32 ± 4 each by chance), and
//! the thread holding more of them answers them more slowly.
//!
//! The decision is [`Balance::may_accept`] (pure over the counts); the act is the wait
//! in [`Balance::wait_turn`] and the counts kept by [`Balance::opened`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// One accepting thread's place among those sharing a socket.
#[derive(Debug, Clone)]
pub struct Balance {
    open: Arc<[AtomicUsize]>,
    changed: Arc<Notify>,
    me: usize,
}

/// Held while a connection of one thread is open; dropping it counts it closed.
#[derive(Debug)]
pub struct Opened(Balance);

impl Drop for Opened {
    fn drop(&mut self) {
        self.0.open[self.0.me].fetch_sub(1, Ordering::Relaxed);
        self.0.changed.notify_waiters();
    }
}

impl Balance {
    /// The places of `n` threads sharing one socket.
    pub fn shared(n: usize) -> Vec<Balance> {
        let open: Arc<[AtomicUsize]> = (0..n.max(1)).map(|_| AtomicUsize::new(0)).collect();
        let changed = Arc::new(Notify::new());
        (0..n.max(1)).map(|me| Balance { open: open.clone(), changed: changed.clone(), me }).collect()
    }

    /// Whether this thread may take the next connection: it holds no more than any
    /// other (ties: every tied thread may; the one that takes it first gets it).
    pub fn may_accept(&self) -> bool {
        let mine = self.open[self.me].load(Ordering::Relaxed);
        self.open.iter().all(|o| mine <= o.load(Ordering::Relaxed))
    }

    /// Waits until this thread may accept; `false` if `cancel` fired first.
    pub async fn wait_turn(&self, cancel: &CancellationToken) -> bool {
        loop {
            // Made before the check: a change after the check still wakes it.
            let changed = self.changed.notified();
            if self.may_accept() {
                return true;
            }
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = changed => {}
            }
        }
    }

    /// Counts a connection this thread accepted, until the guard drops.
    pub fn opened(&self) -> Opened {
        self.open[self.me].fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
        Opened(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_waits_while_it_holds_more_than_another() {
        let b = Balance::shared(2);
        assert!(b[0].may_accept() && b[1].may_accept(), "ties: both");
        let one = b[0].opened();
        assert!(!b[0].may_accept() && b[1].may_accept());
        let two = b[1].opened();
        assert!(b[0].may_accept() && b[1].may_accept());
        drop(one);
        assert!(b[0].may_accept() && !b[1].may_accept());
        drop(two);
        assert!(b[1].may_accept());
    }

    #[tokio::test]
    async fn a_waiting_thread_is_woken_when_the_others_catch_up() {
        let b = Balance::shared(2);
        let held = b[0].opened();
        let cancel = CancellationToken::new();
        let (waiter, c) = (b[0].clone(), cancel.clone());
        let t = tokio::spawn(async move { waiter.wait_turn(&c).await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!t.is_finished(), "it holds more than the other");
        let other = b[1].opened();
        assert!(t.await.unwrap(), "woken once the other took one");
        drop((held, other));
        let _again = b[0].opened();
        cancel.cancel();
        assert!(!b[0].wait_turn(&cancel).await, "cancelled");
    }
}
