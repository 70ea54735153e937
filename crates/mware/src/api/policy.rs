//! The layer in front of every declared route, built from the route's declaration
//! (`mware_host::Route`), so the binary knows no service's paths:
//!
//! 1. the credential the route's [`Access`] asks for;
//! 2. the instance its [`Scope`] names: served here, forwarded once to the active
//!    instance of the owning group, or refused with the reason. A domain is taken
//!    from the decoded path parameter and made canonical with the one rule of
//!    `mware_config::canonical` before it is routed, and the handler finds that same
//!    canonical name in the request as [`DomainArg`]: the name that picks the group is
//!    the name the handler uses;
//! 3. for a service's route, whether the host says the service runs here (unless the
//!    route is served anywhere: a site-wide view read from the coordinator).
//!
//! Before all this the client's address is settled and put in the request as
//! [`ClientAddr`]: the TCP peer's, or the one a forwarding member of the site passed on
//! ([`forward::client_addr`]); the header is then dropped, so no handler can read a
//! client's claim. A route with a [`Gate`] has it asked right then, before its body is
//! read or it is forwarded: a client already over a limit costs no more than that.

use super::forward::{self, Target};
use super::{auth, AppState};
use axum::extract::{RawPathParams, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mware_host::{Access, ApiError, ClientAddr, DomainArg, Gate, ResolvedArg, Scope, Unavailable};
use std::sync::Arc;

/// What a route declared.
pub struct Policy {
    /// The service owning the route (`None`: the daemon's own route).
    pub service: Option<&'static str>,
    /// Who may call it.
    pub access: Access,
    /// Which instance serves it.
    pub scope: Scope,
    /// The answer while the service is not running here.
    pub unavailable: Option<Unavailable>,
    /// Served here even while the service does not run here.
    pub anywhere: bool,
    /// The service's early check by client address.
    pub gate: Option<Gate>,
}

/// The layer.
pub async fn enforce(
    State((st, p)): State<(AppState, Arc<Policy>)>,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(r) = auth::refusal(&st, p.access, p.service, req.headers()) {
        return r;
    }
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let client = forward::client_addr(&st.0.site.borrow(), req.headers(), peer);
    req.headers_mut().remove(forward::CLIENT_ADDR);
    if let Some(a) = client {
        if let Some(refused) = p.gate.as_ref().and_then(|g| g(a)) {
            return refused;
        }
        req.extensions_mut().insert(ClientAddr(a));
    }
    let group = match p.scope {
        Scope::Instance => None,
        Scope::Group => st.0.site.borrow().instance(&st.0.instance).map(|me| me.role.group),
        Scope::Domain(param) => {
            let raw = match &params {
                Ok(ps) => ps.iter().find(|(k, _)| *k == param).map(|(_, v)| v.to_string()),
                Err(e) => return bad_request(param, &format!("expected a UTF-8 path segment, found {e}")),
            };
            let Some(raw) = raw else {
                return bad_request(param, "expected a path segment, found none");
            };
            let domain = match mware_config::canonical(&raw) {
                Ok(d) => d,
                Err(e) => return bad_request(param, &e.to_string()),
            };
            let owner = st.0.tree.read().unwrap_or_else(|e| e.into_inner()).route(&domain);
            let Some(owner) = owner else {
                return ApiError::new(StatusCode::NOT_FOUND, format!("no group serves domain {domain}")).field(param).into_response();
            };
            req.extensions_mut().insert(DomainArg(domain));
            Some(owner)
        }
        Scope::DomainField(_) => None, // below: it reads the body
        Scope::Resolve(param, resolve) => {
            let raw = match &params {
                Ok(ps) => ps.iter().find(|(k, _)| *k == param).map(|(_, v)| v.to_string()),
                Err(e) => return bad_request(param, &format!("expected a UTF-8 path segment, found {e}")),
            };
            let Some(raw) = raw else {
                return bad_request(param, "expected a path segment, found none");
            };
            let site = st.0.site.borrow().clone();
            let tree = st.0.tree.read().unwrap_or_else(|e| e.into_inner()).clone();
            match resolve(&site, &tree, &raw) {
                Ok((group, key)) => {
                    req.extensions_mut().insert(ResolvedArg(key));
                    Some(group)
                }
                Err((code, why)) => {
                    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
                    // A protocol with its own failure body (res_config_curl) gets that body
                    // with the rule's status: a JSON document would be read as fields.
                    if let Some(f) = p.unavailable {
                        let mut r = f(req.uri(), &why);
                        *r.status_mut() = code;
                        return r;
                    }
                    return ApiError::new(code, format!("path segment {param}: {why}"))
                        .field(param)
                        .retryable(code.is_server_error())
                        .into_response();
                }
            }
        }
    };
    let group = match p.scope {
        Scope::DomainField(name) => match field_domain(&st, name, req).await {
            Ok((r, g)) => {
                req = r;
                g
            }
            Err(resp) => return resp,
        },
        _ => group,
    };
    if let Some(group) = group {
        let forwarded = req.headers().contains_key(forward::FORWARDED_BY);
        match forward::target(&st, group, forwarded).await {
            Target::Local => {}
            Target::Refuse(g, why) => {
                forward::count(&st, "no_active");
                return match p.unavailable {
                    Some(f) => f(req.uri(), &why),
                    None => forward::json_err(StatusCode::SERVICE_UNAVAILABLE, why, Some(g)),
                };
            }
            Target::Remote(name, addr) => return forward::proxy_to(&st, group, &name, &addr, req).await,
        }
    }
    serve_here(&st, &p, req, next).await
}

/// The largest body a [`Scope::DomainField`] route reads to find its domain (axum's own
/// default limit for a JSON body).
const FIELD_BODY_LIMIT: usize = 2 << 20;

/// The group of a [`Scope::DomainField`] call: the domain from the query parameter
/// `name`, else from the top-level field `name` of a JSON body (the body is read once and
/// put back for the handler or the forward). No such field, a malformed domain or one no
/// group serves: this instance's group, whose handler reports it with the rest.
async fn field_domain(st: &AppState, name: &'static str, req: Request) -> Result<(Request, Option<u32>), Response> {
    let query = axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(req.uri());
    let from_query = query.ok().and_then(|q| q.0.get(name).cloned());
    let (parts, body) = req.into_parts();
    let (raw, req) = match from_query {
        Some(d) => (Some(d), Request::from_parts(parts, body)),
        None => {
            let bytes = match axum::body::to_bytes(body, FIELD_BODY_LIMIT).await {
                Ok(b) => b,
                Err(e) => {
                    let msg = format!("request: expected a body of at most {FIELD_BODY_LIMIT} bytes: {e}");
                    return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, msg).into_response());
                }
            };
            let raw = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get(name).and_then(|d| d.as_str()).map(str::to_string));
            (raw, Request::from_parts(parts, axum::body::Body::from(bytes)))
        }
    };
    let mut req = req;
    let domain = raw.and_then(|r| mware_config::canonical(&r).ok());
    let owner = domain.as_ref().and_then(|d| st.0.tree.read().unwrap_or_else(|e| e.into_inner()).route(d));
    match (domain, owner) {
        (Some(domain), Some(owner)) => {
            req.extensions_mut().insert(DomainArg(domain));
            Ok((req, Some(owner)))
        }
        // No usable domain: served by this group, whose handler reports every problem
        // of the request (the domain's among them) at once.
        _ => Ok((req, st.0.site.borrow().instance(&st.0.instance).map(|me| me.role.group))),
    }
}

/// Serves the call on this instance if its service runs here.
async fn serve_here(st: &AppState, p: &Policy, req: Request, next: Next) -> Response {
    if let Some(name) = p.service.filter(|_| !p.anywhere) {
        let status = st.0.host.state_of(name);
        if let Some(s) = status.filter(|s| !s.state.serves()) {
            let reason = format!("service {name} is not running on {}: {}", st.0.instance, s.reason);
            if let Some(f) = p.unavailable {
                return f(req.uri(), &reason);
            }
            return ApiError::unavailable(reason).detail("service", name).into_response();
        }
    }
    let resp = next.run(req).await;
    if p.unavailable.is_some() {
        return resp; // a protocol with its own bodies (res_config_curl)
    }
    json_rejection(resp).await
}

/// axum's own rejections (bad JSON 400, body too large 413, wrong content type 415,
/// JSON of the wrong shape 422) answer in plain text; every other error of the API is
/// JSON, so these become `{"error": "request: <axum's words>", "retryable": false}`.
async fn json_rejection(resp: Response) -> Response {
    let plain =
        resp.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("text/plain"));
    let code = resp.status();
    if !plain || !matches!(code.as_u16(), 400 | 413 | 415 | 422) {
        return resp;
    }
    let text = axum::body::to_bytes(resp.into_body(), 64 << 10).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    ApiError::new(code, format!("request: {}", text.trim())).into_response()
}

/// Answers a path no route declares.
pub async fn no_route(req: Request) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("expected a path of the API (GET /api/openapi.json lists them), found {}", req.uri().path()),
    )
    .into_response()
}

/// Answers a method a declared path does not take.
pub async fn wrong_method(req: Request) -> Response {
    let msg = format!("expected another method for {} (GET /api/openapi.json lists them), found {}", req.uri().path(), req.method());
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, msg).into_response()
}

fn bad_request(field: &str, msg: &str) -> Response {
    ApiError::bad_request(format!("path segment {field}: {msg}")).field(field).into_response()
}
