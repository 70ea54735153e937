//! The hot path: a read whose answer is cached and fresh is answered here, in front of
//! the router, with the same checks (`Host`, the path, the body limit) and the same
//! key, decision and metrics as [`super::proxy`]. Everything else goes to the router:
//! the request is passed on with its body already read.

use super::decide::Decision;
use super::proxy::{self, Shared};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::ServiceExt;

/// The router with the hot path in front.
#[derive(Clone)]
pub(crate) struct HotPath {
    pub(crate) state: Shared,
    pub(crate) router: Router,
}

impl tower::Service<Request> for HotPath {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let (s, router) = (self.state.clone(), self.router.clone());
        Box::pin(async move {
            let req = match hit(&s, req).await {
                Ok(answer) => return Ok(answer),
                Err(req) => req,
            };
            router.oneshot(req).await
        })
    }
}

/// The answer of a fresh cached read, or the request back (its body read, if it was)
/// for the router.
async fn hit(s: &Shared, req: Request) -> Result<Response, Request> {
    let names = [s.listen_ip.as_str(), "localhost", "127.0.0.1", "::1"];
    if mware_http::host::refused(req.headers(), names.into_iter()).is_some() {
        return Err(req);
    }
    let Some(target) = crate::codec::Target::from_path(req.uri().path()) else { return Err(req) };
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if target.op.is_write() || declared.is_none_or(|n| n > s.cfg.max_body_bytes) {
        return Err(req);
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, s.cfg.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return Ok(proxy::body_error(s, &target)),
    };
    let path_query = parts.uri.path_and_query().map_or(parts.uri.path(), |pq| pq.as_str());
    let key = proxy::read_key(s, path_query, parts.headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes), &body);
    if let Some(entry) = s.store.get(&key) {
        if let Decision::ServeFresh { .. } = proxy::decide_cached(s, entry.times) {
            s.metrics.cache_hits.inc();
            s.metrics.request(proxy::family_label(&s.cfg, &target.family), target.op.as_str(), "hit");
            return Ok(proxy::reply(StatusCode::OK, entry.body));
        }
    }
    Err(Request::from_parts(parts, Body::from(body)))
}
