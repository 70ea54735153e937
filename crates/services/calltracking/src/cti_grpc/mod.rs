//! The gRPC CTI adapter (key [`crate::cti::GRPC_KEY`]): tonic serving
//! `mware.cti.v1.Cti/Subscribe` (`proto/cti.proto`; the generated code is checked in,
//! so building needs no protoc). A client asks for a domain, an extension, a hunt
//! number or an external number (`cti_filter`) and gets the same changes as a WebSocket
//! client, as a server stream, in order; with the site's API token as `authorization:
//! Bearer …` metadata when the site has one. Each stream has a queue of [`QUEUE`]
//! events: a client whose queue stays full for [`crate::cti_ws::WRITE_TIMEOUT`] (it
//! does not read: HTTP/2 flow control stopped the sends), or that falls
//! [`crate::tracker::FEED`] events behind, is cut with RESOURCE_EXHAUSTED when the
//! queue has room for it, its stream ended either way; the provider never waits for it.

#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    include!("mware.cti.v1.rs");
}

use crate::adapter::Adapter;
use crate::cti_filter::Filter;
use crate::metrics::Metrics;
use crate::tracker::{Published, Tracker};
use futures::StreamExt;
use pb::cti_server::{Cti, CtiServer};
use pb::subscribe_request::What;
use pb::{Event, SubscribeRequest};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Events queued for one stream.
pub const QUEUE: usize = 256;
/// How long a stop waits for the clients' connections to close.
const GRACE: std::time::Duration = std::time::Duration::from_secs(1);
/// The socket's send buffer: bounds the memory a client holds in the kernel.
const SEND_BUFFER: usize = 64 * 1024;

/// Serves on the adapter's address until `cancel`; an error when the listener fails.
pub async fn serve(
    a: &Arc<Adapter>,
    token: Option<String>,
    tracker: &Arc<Tracker>,
    m: &Metrics,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let l = TcpListener::bind(a.addr).await.map_err(|e| format!("cannot listen on {}: {e}", a.addr))?;
    a.set("running", format!("listening on {} (gRPC)", a.addr));
    let clients = CancellationToken::new();
    let _stop = clients.clone().drop_guard();
    let svc = Provider { adapter: a.clone(), token, tracker: tracker.clone(), metrics: m.clone(), stop: clients.clone() };
    let incoming = TcpListenerStream::new(l).map(|r| {
        r.inspect(|s| {
            let _ = socket2::SockRef::from(s).set_send_buffer_size(SEND_BUFFER);
        })
    });
    // On stop the streams end first (their tasks follow `clients`), then the server
    // shuts down gracefully; connections that have not closed a second later are left
    // to end on their own (the listener is closed either way).
    let stop_streams = clients.clone();
    let serve = tonic::transport::Server::builder().add_service(CtiServer::new(svc)).serve_with_incoming_shutdown(incoming, async move {
        cancel.cancelled().await;
        stop_streams.cancel();
    });
    tokio::select! {
        r = serve => r.map_err(|e| format!("gRPC on {}: {e}", a.addr)),
        _ = async { cancel.cancelled().await; tokio::time::sleep(GRACE).await } => Ok(()),
    }
}

struct Provider {
    adapter: Arc<Adapter>,
    token: Option<String>,
    tracker: Arc<Tracker>,
    metrics: Metrics,
    stop: CancellationToken,
}

/// Counts a connected stream while it lives.
struct Counted(Arc<Adapter>, Metrics);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
        self.1.cti_clients.dec();
    }
}

/// A published change as the protocol's `Event`.
pub fn event(p: &Published) -> Event {
    Event {
        event: p.event.to_string(),
        id: p.id.clone(),
        domain: p.domain.clone(),
        from: p.from.clone(),
        to: p.to.clone(),
        at_ms: p.at_ms,
        answered: p.answered,
        member: p.member.clone(),
        code: p.code.map(u32::from),
        state: p.state.clone(),
    }
}

/// What a request follows.
pub fn filter(req: &SubscribeRequest) -> Result<Filter, String> {
    match &req.what {
        Some(What::Domain(v)) => Filter::parse("domain", v),
        Some(What::Extension(v)) => Filter::parse("extension", v),
        Some(What::Hunt(v)) => Filter::parse("hunt", v),
        Some(What::Number(v)) => Filter::parse("number", v),
        None => Err("expected one of domain, extension, hunt or number, found none".into()),
    }
}

impl Provider {
    fn authorised<T>(&self, req: &Request<T>) -> bool {
        let Some(t) = &self.token else { return true };
        let given = req.metadata().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        given.is_some_and(|g| mware_config::same(g.as_bytes(), t.as_bytes()))
    }

    fn cut(&self, tx: &mpsc::Sender<Result<Event, Status>>, why: String) {
        self.adapter.cut.fetch_add(1, Ordering::Relaxed);
        self.metrics.cti_cut.inc();
        tracing::info!(key = %self.adapter.key, why, "gRPC CTI client cut: it reads too slowly");
        let _ = tx.try_send(Err(Status::resource_exhausted(format!("cut: it reads too slowly ({why})"))));
    }
}

#[tonic::async_trait]
impl Cti for Provider {
    type SubscribeStream = ReceiverStream<Result<Event, Status>>;

    async fn subscribe(&self, req: Request<SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        if !self.authorised(&req) {
            return Err(Status::unauthenticated("expected the API token (authorization: Bearer <token>)"));
        }
        let filter = filter(req.get_ref()).map_err(Status::invalid_argument)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut feed = self.tracker.subscribe();
        let now = filter.current(&self.tracker);
        self.adapter.clients.fetch_add(1, Ordering::Relaxed);
        self.metrics.cti_clients.inc();
        let me = Provider {
            adapter: self.adapter.clone(),
            token: None,
            tracker: self.tracker.clone(),
            metrics: self.metrics.clone(),
            stop: self.stop.clone(),
        };
        tokio::spawn(async move {
            let _counted = Counted(me.adapter.clone(), me.metrics.clone());
            for p in now {
                if tx.send(Ok(event(&p))).await.is_err() {
                    return;
                }
            }
            loop {
                let p = tokio::select! {
                    _ = me.stop.cancelled() => return,
                    _ = tx.closed() => return,
                    r = feed.recv() => match r {
                        Ok(p) => p,
                        Err(RecvError::Lagged(n)) => return me.cut(&tx, format!("{n} events behind")),
                        Err(RecvError::Closed) => return,
                    },
                };
                if !filter.matches(&p) {
                    continue;
                }
                match tokio::time::timeout(crate::cti_ws::WRITE_TIMEOUT, tx.send(Ok(event(&p)))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        let ms = crate::cti_ws::WRITE_TIMEOUT.as_millis();
                        return me.cut(&tx, format!("its stream took nothing for {ms} ms"));
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
