//! The Notifications API: `POST /api/callmanager/v1/notifications` calls a list of
//! numbers and plays a message ([`crate::notify`]); `GET` lists them with every attempt
//! of every number; `DELETE …/{id}` cancels one. Every route takes the API token. A new
//! notification goes to the group owning the body's `domain`; an id names its group
//! (`<group>-n<hex>`), so `…/notifications/{id}` is forwarded there.

use crate::api::{object, ErrorBody};
use crate::error::CallError;
use crate::handle::Inner;
use crate::notify::{media, runner, Attempt, Message, Notice, Number, Outcome, Window};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Json};
use mware_host::{Access, DomainArg, ResolvedArg, Routes, Scope};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::OpenApi;

/// The routes' paths.
pub(crate) mod paths {
    /// Notifications.
    pub const NOTIFICATIONS: &str = "/api/callmanager/v1/notifications";
    /// One notification.
    pub const NOTIFICATION: &str = "/api/callmanager/v1/notifications/{id}";
}

/// A new notification.
#[allow(dead_code)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewNotification {
    /// The domain it belongs to (its group calls; plain numbers are its users).
    pub domain: String,
    /// 1 to 100 numbers: `sip:` or `tel:` URIs or numbers of the domain, no duplicates.
    pub to: Vec<String>,
    /// The message, spoken by espeak-ng (English voice), at most 1000 characters. Either
    /// `text` or `audio`.
    pub text: Option<String>,
    /// The message as a WAV file: an absolute path ending in `.wav`, readable by every
    /// instance of the group (the next active instance renders it again), at most 300 s.
    pub audio: Option<String>,
    /// Display name shown to the phones.
    pub caller_id: Option<String>,
    /// Most attempts per number, 1..=10 (default 3).
    pub attempts: Option<u32>,
    /// Pause after an attempt before the next one, 1..=86400 s (default 300).
    pub retry_after_s: Option<u32>,
    /// Longest ringing of an attempt, 1..=120 s (default 30).
    pub answer_timeout_s: Option<u32>,
    /// When calls may start: `{"not_before": RFC 3339, "not_after": RFC 3339}`, either
    /// optional; no attempt starts after `not_after` (the number ends `expired`).
    pub window: Option<WindowBody>,
    /// A digit (0-9, *, #, A-D) that confirms, sent by the phone as an RFC 4733
    /// telephone-event; without it, a message played to the end is the success.
    pub confirm_digit: Option<String>,
}

/// The window of a new notification.
#[allow(dead_code)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct WindowBody {
    /// Not before (RFC 3339, e.g. `2026-12-07T09:00:00Z`).
    pub not_before: Option<String>,
    /// Not after (RFC 3339); must be in the future.
    pub not_after: Option<String>,
}

/// The answer to a new notification.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedNotice {
    /// Its id.
    pub id: String,
    /// `running`.
    pub state: String,
    /// Length of the message, ms.
    pub message_ms: u64,
}

/// Notifications.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoticeList {
    /// Newest first.
    pub notifications: Vec<NoticeView>,
}

/// A notification as the API shows it: the record, and how far it got.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoticeView {
    /// The notification with every number and attempt.
    #[serde(flatten)]
    pub notice: Notice,
    /// How many of its numbers are final (confirmed, played, no_answer, busy, failed,
    /// expired or cancelled).
    pub numbers_done: usize,
    /// How many numbers it calls.
    pub numbers_total: usize,
}

impl From<Notice> for NoticeView {
    fn from(notice: Notice) -> Self {
        NoticeView { numbers_done: notice.numbers.iter().filter(|n| n.is_final()).count(), numbers_total: notice.numbers.len(), notice }
    }
}

#[derive(Deserialize)]
struct DomainQuery {
    domain: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    paths(create, list, get_one, cancel),
    components(schemas(NewNotification, WindowBody, CreatedNotice, NoticeList, NoticeView, Notice, Number, Attempt, Outcome, Window, Message)),
    tags((name = "notifications", description = "Voice notifications: numbers called, a message played (espeak-ng or a WAV file), DTMF confirmation, retries"))
)]
struct ApiDoc;

/// The OpenAPI description of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The group a notification id names (`{group}-n{hex}`).
fn notice_group(_: &mware_config::Site, _: &mware_config::DomainTree, id: &str) -> std::result::Result<(u32, String), (u16, String)> {
    match crate::notify::input::group_of(id) {
        Some(g) if id.len() <= 64 => Ok((g, id.to_string())),
        _ => Err((404, format!("no notification {:?} (an id is <group>-n<hex>)", id.chars().take(80).collect::<String>()))),
    }
}

pub(crate) fn routes(inner: Arc<Inner>, r: Routes) -> Routes {
    const ID: Scope = Scope::Resolve("id", notice_group as mware_host::Resolver);
    let s = |m: axum::routing::MethodRouter<Arc<Inner>>| m.with_state(inner.clone());
    r.post(paths::NOTIFICATIONS, Access::Token, Scope::DomainField("domain"), s(post(create)))
        .get(paths::NOTIFICATIONS, Access::Token, Scope::DomainField("domain"), s(get(list)))
        .get(paths::NOTIFICATION, Access::Token, ID, s(get(get_one)))
        .add(Some(Method::DELETE), paths::NOTIFICATION, Access::Token, ID, s(axum::routing::delete(cancel)))
}

type Result<T> = std::result::Result<T, CallError>;
/// Calls the numbers and plays the message to each that answers.
#[utoipa::path(post, path = "/api/callmanager/v1/notifications", tag = "notifications", request_body = NewNotification,
    responses((status = 201, description = "Created: the numbers are being called", body = CreatedNotice),
        (status = 400, description = "Bad input; every problem, each field named", body = ErrorBody),
        (status = 503, description = "Not active here (retryable)", body = ErrorBody)))]
async fn create(
    State(inner): State<Arc<Inner>>,
    routed: Option<Extension<DomainArg>>,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedNotice>)> {
    let a = inner.active()?;
    let m = object(&body)?;
    let routed = routed.map(|Extension(DomainArg(d))| d);
    let mut n = crate::notify::input::check(&m, routed, a.group, &a.eng.instance, mware_coord::now_ms())?;
    let field = if matches!(n.message, Message::Text(_)) { "text" } else { "audio" };
    let ulaw = runner::render(&n.message).await.map_err(|e| CallError::Invalid { field: field.into(), msg: e })?;
    n.message_ms = ulaw.len() as u64 * 1000 / media::RATE;
    let n = a.notices.create(n, ulaw).await?;
    Ok((StatusCode::CREATED, Json(CreatedNotice { id: n.id, state: n.state, message_ms: n.message_ms })))
}

/// The group's notifications (of `domain` if given), newest first.
#[utoipa::path(get, path = "/api/callmanager/v1/notifications", tag = "notifications",
    params(("domain" = Option<String>, Query, description = "Only this domain's")),
    responses((status = 200, description = "Notifications", body = NoticeList), (status = 503, description = "Not active here", body = ErrorBody)))]
async fn list(State(inner): State<Arc<Inner>>, Query(q): Query<DomainQuery>) -> Result<Json<NoticeList>> {
    let a = inner.active()?;
    let domain = q
        .domain
        .map(|d| mware_config::canonical(&d).map_err(|e| CallError::Invalid { field: "domain".into(), msg: e.to_string() }))
        .transpose()?;
    Ok(Json(NoticeList { notifications: a.notices.list(domain.as_deref()).into_iter().map(NoticeView::from).collect() }))
}

/// One notification: per number its state and every attempt (start, end, outcome, SIP code).
#[utoipa::path(get, path = "/api/callmanager/v1/notifications/{id}", tag = "notifications", params(("id" = String, Path, description = "Notification id")),
    responses((status = 200, description = "The notification", body = NoticeView), (status = 404, description = "No such notification", body = ErrorBody)))]
async fn get_one(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>) -> Result<Json<NoticeView>> {
    Ok(Json(inner.active()?.notices.get(&id)?.into()))
}

/// Cancels a notification: ringing attempts are cancelled, playing ones hung up, no
/// number is called any more.
#[utoipa::path(delete, path = "/api/callmanager/v1/notifications/{id}", tag = "notifications", params(("id" = String, Path, description = "Notification id")),
    responses((status = 200, description = "Cancelled", body = NoticeView), (status = 404, description = "No such notification", body = ErrorBody),
        (status = 409, description = "Already done or cancelled", body = ErrorBody)))]
async fn cancel(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>) -> Result<Json<NoticeView>> {
    Ok(Json(inner.active()?.notices.cancel(&id).await?.into()))
}
