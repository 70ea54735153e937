//! The Calls API (REST + JSON) with its OpenAPI description. Every route takes the API
//! token. A new call goes to the active instance of this instance's group (or, by the
//! `/domains/{domain}/calls` path, of the group owning the domain); a call's id names
//! its group, so `…/calls/{id}` is forwarded there. Errors are
//! `{"error": "...", "retryable": bool, "field"?: "..."}`.

use crate::call::{CallView, Command, LegView};
use crate::decide::{CallState, LegState, Side};
use crate::error::CallError;
use crate::handle::{Active, Inner};
use crate::validate;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use mware_host::{Access, DomainArg, ResolvedArg, Routes, Scope};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;

/// An error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What was expected and what was found (every problem, `; `-separated).
    pub error: String,
    /// Whether retrying (later, or through another instance) may succeed.
    pub retryable: bool,
    /// The first request field at fault, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for CallError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retryable = matches!(self, CallError::Limited { .. } | CallError::NotRunning(_) | CallError::Coord(_));
        let body = ErrorBody { error: self.to_string(), retryable, field: self.field().map(str::to_string) };
        let mut r = (status, Json(body)).into_response();
        if let CallError::Limited { retry_after_s, .. } = self {
            r.headers_mut().insert(header::RETRY_AFTER, retry_after_s.into());
        }
        r
    }
}

/// A new call.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CreateBody {
    /// The domain the call belongs to (its group places it; plain numbers are its users).
    pub domain: String,
    /// Who is rung first: a `sip:` or `tel:` URI, or a number of the domain.
    pub from: String,
    /// Who `from` is connected with once it answers.
    pub to: String,
    /// The display name shown to both phones.
    pub caller_id: Option<String>,
    /// Longest ringing of each leg, 1..=30 s (default: the section's `answer_timeout_s`).
    pub answer_timeout_s: Option<u32>,
    /// Longest call, 1..=86400 s (default: the section's `max_duration_s`).
    pub max_duration_s: Option<u32>,
    /// The client's own values, kept with the call (a JSON object, at most 8 KiB).
    #[schema(value_type = Object)]
    pub variables: Option<Value>,
}

/// The answer to a new call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created {
    /// The call's id.
    pub id: String,
    /// Its state (`dialing`).
    pub state: CallState,
}

/// Calls.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse {
    /// Newest first: live calls and those ended in the last 10 minutes.
    pub calls: Vec<CallView>,
}

/// `…/dtmf`.
#[allow(dead_code)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DtmfBody {
    /// Digits 0-9, *, #, A-D (1 to 32), sent to `to` one INFO each.
    pub digits: String,
}

/// `…/transfer`.
#[allow(dead_code)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TransferBody {
    /// The new party `from` is connected with (`to` is then hung up).
    pub to: String,
}

/// The outcome of an operation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Done {
    /// What was done, in words.
    pub done: String,
    /// The call after it.
    pub call: CallView,
}

/// `?domain=`.
#[derive(Debug, Deserialize)]
pub struct DomainQuery {
    /// Only this domain's calls.
    pub domain: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    paths(create, create_in, list, get_one, hang_up, hold, resume, dtmf, transfer),
    components(schemas(CreateBody, Created, ListResponse, DtmfBody, TransferBody, Done, ErrorBody, CallView, LegView, CallState, LegState, Side)),
    tags((name = "callmanager", description = "Calls placed by mware as a SIP third-party call controller"))
)]
struct ApiDoc;

/// The OpenAPI description of these routes, for the daemon to merge.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The group a call id names (`{group}-{hex}`), for [`Scope::Resolve`].
fn call_group(_: &mware_config::Site, _: &mware_config::DomainTree, id: &str) -> std::result::Result<(u32, String), (u16, String)> {
    let group = id.split_once('-').and_then(|(g, _)| g.parse::<u32>().ok());
    match group {
        Some(g) if id.len() <= 64 => Ok((g, id.to_string())),
        _ => Err((404, format!("no call {id:?} (a call id is <group>-<hex>)"))),
    }
}

/// The routes' paths, written once: the routes and `mware calls` use them.
pub(crate) mod paths {
    /// New calls (this instance's group), and the group's calls.
    pub const CALLS: &str = "/api/callmanager/v1/calls";
    /// New calls of a domain (forwarded to its group).
    pub const DOMAIN_CALLS: &str = "/api/callmanager/v1/domains/{domain}/calls";
    /// One call.
    pub const CALL: &str = "/api/callmanager/v1/calls/{id}";
    /// Hold.
    pub const HOLD: &str = "/api/callmanager/v1/calls/{id}/hold";
    /// Resume.
    pub const RESUME: &str = "/api/callmanager/v1/calls/{id}/resume";
    /// DTMF.
    pub const DTMF: &str = "/api/callmanager/v1/calls/{id}/dtmf";
    /// Transfer.
    pub const TRANSFER: &str = "/api/callmanager/v1/calls/{id}/transfer";
}

pub(crate) fn routes(inner: Arc<Inner>) -> Routes {
    const ID: Scope = Scope::Resolve("id", call_group as mware_host::Resolver);
    let s = |m: axum::routing::MethodRouter<Arc<Inner>>| m.with_state(inner.clone());
    Routes::new()
        .post(paths::CALLS, Access::Token, Scope::DomainField("domain"), s(post(create)))
        .post(paths::DOMAIN_CALLS, Access::Token, Scope::Domain("domain"), s(post(create_in)))
        .get(paths::CALLS, Access::Token, Scope::DomainField("domain"), s(get(list)))
        .get(paths::CALL, Access::Token, ID, s(get(get_one)))
        .add(Some(Method::DELETE), paths::CALL, Access::Token, ID, s(delete(hang_up)))
        .post(paths::HOLD, Access::Token, ID, s(post(hold)))
        .post(paths::RESUME, Access::Token, ID, s(post(resume)))
        .post(paths::DTMF, Access::Token, ID, s(post(dtmf)))
        .post(paths::TRANSFER, Access::Token, ID, s(post(transfer)))
}

type Result<T> = std::result::Result<T, CallError>;

fn bad(field: &str, msg: impl Into<String>) -> CallError {
    CallError::Invalid { field: field.into(), msg: msg.into() }
}

/// The JSON object of a body, or a 400 (the Calls and the Conferences API).
pub(crate) fn object(body: &Bytes) -> Result<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(bad("body", format!("expected a JSON object, found {}", mware_config::kind(&other)))),
        Err(e) => Err(bad("body", format!("expected JSON: {e}"))),
    }
}

/// Checks a new call's body (every problem reported) into a [`crate::call::CallSpec`].
fn spec(a: &Active, body: &Bytes, path_domain: Option<&str>) -> Result<crate::call::CallSpec> {
    let m = object(body)?;
    let mut errs: Vec<(String, String)> = vec![];
    let known = ["domain", "from", "to", "caller_id", "answer_timeout_s", "max_duration_s", "variables"];
    for k in m.keys().filter(|k| !known.contains(&k.as_str())) {
        errs.push((k.chars().take(64).collect(), format!("unknown field; expected one of {}", known.join(", "))));
    }
    let text = |k: &str, need: bool, errs: &mut Vec<(String, String)>| -> Option<String> {
        match m.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) if !need => None,
            None | Some(Value::Null) => {
                errs.push((k.into(), "required".into()));
                None
            }
            Some(v) => {
                errs.push((k.into(), format!("expected a string, found {}", mware_config::kind(v))));
                None
            }
        }
    };
    let domain_raw = match path_domain {
        Some(d) => Some(d.to_string()),
        None => text("domain", true, &mut errs),
    };
    let domain = domain_raw.and_then(|d| match mware_config::canonical(&d) {
        Ok(c) => Some(c),
        Err(e) => {
            errs.push(("domain".into(), e.to_string()));
            None
        }
    });
    if let (Some(d), None) = (&domain, path_domain) {
        let site = a.site.borrow().clone();
        let owner = mware_config::DomainTree::build(&site).route(d);
        if owner != Some(a.group) {
            let msg = match owner {
                None => format!("expected a domain that a group of the site serves, found {d}"),
                Some(g) => format!("{d} is served by group {g}, not group {}: ask that group's active instance", a.group),
            };
            errs.push(("domain".into(), msg));
        }
    }
    let dom = domain.clone().unwrap_or_else(|| "invalid".into());
    let party = |k: &str, errs: &mut Vec<(String, String)>| {
        text(k, true, errs).and_then(|v| validate::party(&v, &dom).map_err(|e| errs.push((k.into(), e))).ok())
    };
    let from = party("from", &mut errs);
    let to = party("to", &mut errs);
    let caller_id =
        text("caller_id", false, &mut errs).and_then(|v| validate::display(&v).map_err(|e| errs.push(("caller_id".into(), e))).ok());
    let num = |k: &str, max: u32, dflt: u32, errs: &mut Vec<(String, String)>| match m.get(k) {
        None | Some(Value::Null) => dflt,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|x| (1..=u64::from(max)).contains(&x)) => n.as_u64().unwrap_or(1) as u32,
        Some(v) => {
            errs.push((
                k.into(),
                format!("expected a whole number 1..={max}, found {}", v.to_string().chars().take(40).collect::<String>()),
            ));
            dflt
        }
    };
    let answer_timeout_s = num("answer_timeout_s", 30, a.cfg.answer_timeout_s, &mut errs);
    let max_duration_s = num("max_duration_s", 86_400, a.cfg.max_duration_s, &mut errs);
    let variables = match m.get("variables") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) if v.to_string().len() <= 8192 => v.clone(),
        Some(Value::Object(_)) => {
            errs.push(("variables".into(), "expected at most 8 KiB of JSON".into()));
            Value::Null
        }
        Some(v) => {
            errs.push(("variables".into(), format!("expected an object, found {}", mware_config::kind(v))));
            Value::Null
        }
    };
    if !errs.is_empty() {
        return Err(CallError::InvalidMany(errs));
    }
    let (Some(domain), Some(from), Some(to)) = (domain, from, to) else {
        return Err(bad("body", "incomplete"));
    };
    let id = format!("{}-{:016x}", a.group, rand::random::<u64>());
    Ok(crate::call::CallSpec { id, domain, from, to, caller_id, answer_timeout_s, max_duration_s, variables })
}

/// Places a call: rings `from`, and when it answers connects it with `to`.
#[utoipa::path(
    post,
    path = "/api/callmanager/v1/calls",
    tag = "callmanager",
    request_body = CreateBody,
    responses(
        (status = 201, description = "Placed: `from` is being rung", body = Created),
        (status = 400, description = "Bad input; every problem, the first field named", body = ErrorBody),
        (status = 429, description = "A limit is reached (calls per domain, per site, per second); see Retry-After", body = ErrorBody),
        (status = 503, description = "Not active here (retryable)", body = ErrorBody),
    )
)]
async fn create(State(inner): State<Arc<Inner>>, routed: Option<Extension<DomainArg>>, body: Bytes) -> Result<(StatusCode, Json<Created>)> {
    let a = inner.active()?;
    let routed = routed.map(|Extension(DomainArg(d))| d);
    let v = a.start(spec(&a, &body, routed.as_deref())?)?;
    Ok((StatusCode::CREATED, Json(Created { id: v.id, state: v.state })))
}

/// Places a call in `domain` (forwarded to the group owning it); the body's `domain`
/// may be left out.
#[utoipa::path(
    post,
    path = "/api/callmanager/v1/domains/{domain}/calls",
    tag = "callmanager",
    params(("domain" = String, Path, description = "Domain")),
    request_body = CreateBody,
    responses(
        (status = 201, description = "Placed", body = Created),
        (status = 400, description = "Bad input", body = ErrorBody),
        (status = 429, description = "A limit is reached; see Retry-After", body = ErrorBody),
        (status = 503, description = "Not active here (retryable)", body = ErrorBody),
    )
)]
async fn create_in(
    State(inner): State<Arc<Inner>>,
    Extension(DomainArg(domain)): Extension<DomainArg>,
    body: Bytes,
) -> Result<(StatusCode, Json<Created>)> {
    let a = inner.active()?;
    let v = a.start(spec(&a, &body, Some(&domain))?)?;
    Ok((StatusCode::CREATED, Json(Created { id: v.id, state: v.state })))
}

/// The group's calls (of `domain` if given).
#[utoipa::path(
    get,
    path = "/api/callmanager/v1/calls",
    tag = "callmanager",
    params(("domain" = Option<String>, Query, description = "Only this domain's calls")),
    responses((status = 200, description = "Calls", body = ListResponse), (status = 503, description = "Not active here", body = ErrorBody))
)]
async fn list(State(inner): State<Arc<Inner>>, Query(q): Query<DomainQuery>) -> Result<Json<ListResponse>> {
    let a = inner.active()?;
    let domain = match q.domain {
        Some(d) => Some(mware_config::canonical(&d).map_err(|e| bad("domain", e.to_string()))?),
        None => None,
    };
    if let Some(d) = &domain {
        let site = a.site.borrow().clone();
        if mware_config::DomainTree::build(&site).route(d) != Some(a.group) {
            return Err(CallError::NotFound(format!("no group serves domain {d}")));
        }
    }
    Ok(Json(ListResponse { calls: a.list(domain.as_deref()) }))
}

/// One call: its state, each leg with its state, SIP code and reason, times.
#[utoipa::path(
    get,
    path = "/api/callmanager/v1/calls/{id}",
    tag = "callmanager",
    params(("id" = String, Path, description = "Call id")),
    responses((status = 200, description = "The call", body = CallView), (status = 404, description = "No such call", body = ErrorBody))
)]
async fn get_one(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>) -> Result<Json<CallView>> {
    Ok(Json(inner.active()?.get(&id)?.get()))
}

/// Hangs up both legs (CANCEL what rings, BYE what is up); answers once the call ended.
#[utoipa::path(
    delete,
    path = "/api/callmanager/v1/calls/{id}",
    tag = "callmanager",
    params(("id" = String, Path, description = "Call id")),
    responses((status = 200, description = "Ended (or ending)", body = CallView), (status = 404, description = "No such call", body = ErrorBody))
)]
async fn hang_up(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>) -> Result<Json<CallView>> {
    let h = inner.active()?.get(&id)?;
    if h.get().state != CallState::Ended {
        let _ = h.send(Command::HangUp("the API".into())).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while h.get().state != CallState::Ended && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(Json(h.get()))
}

async fn op(inner: &Inner, id: &str, c: Command) -> Result<Json<Done>> {
    let h = inner.active()?.get(id)?;
    let done = h.send(c).await?;
    Ok(Json(Done { done, call: h.get() }))
}

/// Puts `to` on hold (re-INVITE with `a=sendonly`).
#[utoipa::path(post, path = "/api/callmanager/v1/calls/{id}/hold", tag = "callmanager", params(("id" = String, Path, description = "Call id")),
    responses((status = 200, description = "On hold", body = Done), (status = 404, description = "No such call", body = ErrorBody), (status = 409, description = "Not connected", body = ErrorBody), (status = 502, description = "The phone refused", body = ErrorBody)))]
async fn hold(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>) -> Result<Json<Done>> {
    op(&inner, &id, Command::Hold).await
}

/// Takes `to` off hold (re-INVITE with `a=sendrecv`).
#[utoipa::path(post, path = "/api/callmanager/v1/calls/{id}/resume", tag = "callmanager", params(("id" = String, Path, description = "Call id")),
    responses((status = 200, description = "Resumed", body = Done), (status = 404, description = "No such call", body = ErrorBody), (status = 409, description = "Not connected", body = ErrorBody), (status = 502, description = "The phone refused", body = ErrorBody)))]
async fn resume(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>) -> Result<Json<Done>> {
    op(&inner, &id, Command::Resume).await
}

/// Sends DTMF digits to `to` (SIP INFO `application/dtmf-relay`, one per digit).
#[utoipa::path(post, path = "/api/callmanager/v1/calls/{id}/dtmf", tag = "callmanager", params(("id" = String, Path, description = "Call id")), request_body = DtmfBody,
    responses((status = 200, description = "Sent", body = Done), (status = 400, description = "Bad digits", body = ErrorBody), (status = 404, description = "No such call", body = ErrorBody), (status = 409, description = "Not connected", body = ErrorBody)))]
async fn dtmf(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>, body: Bytes) -> Result<Json<Done>> {
    let m = object(&body)?;
    let digits = match m.get("digits") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(bad("digits", format!("expected a string, found {}", mware_config::kind(v)))),
        None => return Err(bad("digits", "required")),
    };
    validate::dtmf(&digits).map_err(|e| bad("digits", e))?;
    op(&inner, &id, Command::Dtmf(digits)).await
}

/// Connects `from` with a new party: it is called, `from` is re-INVITEd with its offer,
/// then the old `to` is hung up.
#[utoipa::path(post, path = "/api/callmanager/v1/calls/{id}/transfer", tag = "callmanager", params(("id" = String, Path, description = "Call id")), request_body = TransferBody,
    responses((status = 200, description = "Transferred", body = Done), (status = 400, description = "Bad target", body = ErrorBody), (status = 404, description = "No such call", body = ErrorBody), (status = 409, description = "Not connected", body = ErrorBody), (status = 502, description = "The new party or from refused", body = ErrorBody)))]
async fn transfer(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>, body: Bytes) -> Result<Json<Done>> {
    let a = inner.active()?;
    let domain = a.get(&id)?.get().domain;
    let m = object(&body)?;
    let to = match m.get("to") {
        Some(Value::String(s)) => validate::party(s, &domain).map_err(|e| bad("to", e))?,
        Some(v) => return Err(bad("to", format!("expected a string, found {}", mware_config::kind(v)))),
        None => return Err(bad("to", "required")),
    };
    op(&inner, &id, Command::Transfer(to)).await
}
