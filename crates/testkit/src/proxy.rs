//! A TCP proxy on loopback that can cut every connection through it and refuse new
//! ones, then heal: how tests cut one process's link to etcd or PostgreSQL while the
//! others keep theirs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A TCP proxy on loopback that can cut all connections and refuse new ones.
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    rt: tokio::runtime::Runtime,
}

impl Proxy {
    /// Forwards 127.0.0.1:<port> to `upstream`.
    pub fn start(upstream: &str) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (c2, k2, up) = (cut.clone(), conns.clone(), upstream.to_string());
        rt.spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else { continue };
                if c2.load(Ordering::SeqCst) {
                    drop(down); // refused: closed at once
                    continue;
                }
                let up = up.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut u) = tokio::net::TcpStream::connect(&up).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut u).await;
                    }
                });
                k2.lock().unwrap().push(h.abort_handle());
            }
        });
        Proxy { port, cut, conns, rt }
    }

    /// The proxy's endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        let _ = &self.rt;
    }
}
