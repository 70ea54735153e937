//! The Conferences API: rooms mixed by Janus AudioBridge, participants dialled in by
//! mware ([`crate::rooms`]). Every route takes the API token. A new conference goes to
//! the group owning the body's `domain`; a conference's id names its group, so
//! `…/conferences/{id}…` is forwarded there.

use crate::api::object;
use crate::error::CallError;
use crate::handle::Inner;
use crate::rooms::{MemberView, RoomView};
use crate::validate;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Json};
use mware_host::{Access, DomainArg, ResolvedArg, Routes, Scope};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use utoipa::OpenApi;

/// The routes' paths.
pub(crate) mod paths {
    /// Conferences.
    pub const CONFERENCES: &str = "/api/callmanager/v1/conferences";
    /// One conference.
    pub const CONFERENCE: &str = "/api/callmanager/v1/conferences/{id}";
    /// Its participants.
    pub const PARTICIPANTS: &str = "/api/callmanager/v1/conferences/{id}/participants";
    /// One participant.
    pub const PARTICIPANT: &str = "/api/callmanager/v1/conferences/{id}/participants/{pid}";
    /// Mute.
    pub const MUTE: &str = "/api/callmanager/v1/conferences/{id}/participants/{pid}/mute";
    /// Unmute.
    pub const UNMUTE: &str = "/api/callmanager/v1/conferences/{id}/participants/{pid}/unmute";
}

/// A new conference.
#[allow(dead_code)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewConference {
    /// The domain it belongs to (its group runs it).
    pub domain: String,
    /// A name (at most 64 characters).
    pub name: Option<String>,
    /// Most participants at once, 2..=100 (default 10).
    pub max_participants: Option<u32>,
    /// Record the room's mix as a WAV file in the group's `sip.recordings_dir`
    /// (default false; true without that directory is refused).
    pub record: Option<bool>,
}

/// A participant to dial in.
#[allow(dead_code)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewParticipant {
    /// A `sip:` or `tel:` URI, or a number of the conference's domain.
    pub to: String,
}

/// Conferences.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ConferenceList {
    /// Newest first.
    pub conferences: Vec<RoomView>,
}

#[derive(Deserialize)]
struct DomainQuery {
    domain: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    paths(create, list, get_one, destroy, add, remove, mute, unmute),
    components(schemas(NewConference, NewParticipant, ConferenceList, RoomView, MemberView, crate::rooms::Recording)),
    tags((name = "conferences", description = "Conferences mixed by Janus AudioBridge, participants called by mware"))
)]
struct ApiDoc;

/// The OpenAPI description of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The group a conference id names (`{group}-c{hex}`).
fn conf_group(_: &mware_config::Site, _: &mware_config::DomainTree, id: &str) -> std::result::Result<(u32, String), (u16, String)> {
    let group = id.split_once("-c").and_then(|(g, _)| g.parse::<u32>().ok());
    match group {
        Some(g) if id.len() <= 64 => Ok((g, id.to_string())),
        _ => Err((404, format!("no conference {id:?} (a conference id is <group>-c<hex>)"))),
    }
}

pub(crate) fn routes(inner: Arc<Inner>, r: Routes) -> Routes {
    const ID: Scope = Scope::Resolve("id", conf_group as mware_host::Resolver);
    let s = |m: axum::routing::MethodRouter<Arc<Inner>>| m.with_state(inner.clone());
    r.post(paths::CONFERENCES, Access::Token, Scope::DomainField("domain"), s(post(create)))
        .get(paths::CONFERENCES, Access::Token, Scope::DomainField("domain"), s(get(list)))
        .get(paths::CONFERENCE, Access::Token, ID, s(get(get_one)))
        .add(Some(Method::DELETE), paths::CONFERENCE, Access::Token, ID, s(axum::routing::delete(destroy)))
        .post(paths::PARTICIPANTS, Access::Token, ID, s(post(add)))
        .add(Some(Method::DELETE), paths::PARTICIPANT, Access::Token, ID, s(axum::routing::delete(remove)))
        .post(paths::MUTE, Access::Token, ID, s(post(mute)))
        .post(paths::UNMUTE, Access::Token, ID, s(post(unmute)))
}

type Result<T> = std::result::Result<T, CallError>;

/// Creates a conference (a room in the mixer).
#[utoipa::path(post, path = "/api/callmanager/v1/conferences", tag = "conferences", request_body = NewConference,
    responses((status = 201, description = "Created", body = RoomView), (status = 400, description = "Bad input, every problem named"),
        (status = 409, description = "No mixer configured for the group"), (status = 503, description = "Not active here")))]
async fn create(
    State(inner): State<Arc<Inner>>,
    routed: Option<Extension<DomainArg>>,
    body: Bytes,
) -> Result<(StatusCode, Json<RoomView>)> {
    let a = inner.active()?;
    let rooms = a.rooms()?;
    let m = object(&body)?;
    let mut errs = vec![];
    for k in m.keys().filter(|k| !["domain", "name", "max_participants", "record"].contains(&k.as_str())) {
        errs.push((k.chars().take(64).collect::<String>(), "unknown field; expected domain, name, max_participants, record".to_string()));
    }
    let domain = match (routed, m.get("domain")) {
        (Some(Extension(DomainArg(d))), _) => Some(d),
        (None, Some(Value::String(d))) => {
            errs.push((
                "domain".into(),
                format!("expected a domain that a group of the site serves, found {:?}", d.chars().take(80).collect::<String>()),
            ));
            None
        }
        (None, _) => {
            errs.push(("domain".into(), "required: a domain of the site".into()));
            None
        }
    };
    let name = match m.get("name") {
        None | Some(Value::Null) => "conference".to_string(),
        Some(Value::String(n)) if n.chars().count() <= 64 && !n.chars().any(char::is_control) => n.clone(),
        Some(v) => {
            errs.push((
                "name".into(),
                format!("expected at most 64 characters without control characters, found {}", mware_config::kind(v)),
            ));
            String::new()
        }
    };
    let max = match m.get("max_participants") {
        None | Some(Value::Null) => 10,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|x| (2..=100).contains(&x)) => n.as_u64().unwrap_or(10) as u32,
        Some(v) => {
            errs.push((
                "max_participants".into(),
                format!("expected a whole number 2..=100, found {}", v.to_string().chars().take(40).collect::<String>()),
            ));
            0
        }
    };
    let record = match m.get("record") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) if a.cfg.recordings_dir.is_some() => true,
        Some(Value::Bool(true)) => {
            errs.push(("record".into(), "a recording needs sip.recordings_dir in the group's site file; it has none".into()));
            false
        }
        Some(v) => {
            errs.push(("record".into(), format!("expected true or false, found {}", mware_config::kind(v))));
            false
        }
    };
    let Some(domain) = domain.filter(|_| errs.is_empty()) else {
        return Err(CallError::InvalidMany(errs));
    };
    let dir = a.cfg.recordings_dir.as_deref().filter(|_| record);
    let room = rooms.create(domain, name, max, dir).await?;
    Ok((StatusCode::CREATED, Json(rooms.view(&room))))
}

/// The group's conferences (of `domain` if given).
#[utoipa::path(get, path = "/api/callmanager/v1/conferences", tag = "conferences",
    params(("domain" = Option<String>, Query, description = "Only this domain's")),
    responses((status = 200, description = "Conferences", body = ConferenceList)))]
async fn list(State(inner): State<Arc<Inner>>, Query(q): Query<DomainQuery>) -> Result<Json<ConferenceList>> {
    let rooms = inner.active()?.rooms()?;
    let domain = q
        .domain
        .map(|d| mware_config::canonical(&d).map_err(|e| CallError::Invalid { field: "domain".into(), msg: e.to_string() }))
        .transpose()?;
    Ok(Json(ConferenceList { conferences: rooms.list(domain.as_deref()).iter().map(|r| rooms.view(r)).collect() }))
}

/// One conference: who is in, muted, since when.
#[utoipa::path(get, path = "/api/callmanager/v1/conferences/{id}", tag = "conferences", params(("id" = String, Path, description = "Conference id")),
    responses((status = 200, description = "The conference", body = RoomView), (status = 404, description = "No such conference")))]
async fn get_one(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>) -> Result<Json<RoomView>> {
    let rooms = inner.active()?.rooms()?;
    Ok(Json(rooms.view(&rooms.get(&id)?)))
}

/// Hangs everyone up and destroys the room.
#[utoipa::path(delete, path = "/api/callmanager/v1/conferences/{id}", tag = "conferences", params(("id" = String, Path, description = "Conference id")),
    responses((status = 204, description = "Ended"), (status = 404, description = "No such conference")))]
async fn destroy(State(inner): State<Arc<Inner>>, Extension(ResolvedArg(id)): Extension<ResolvedArg>) -> Result<StatusCode> {
    inner.active()?.rooms()?.destroy(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Dials a participant in; its state moves from `dialing` to `joined` or `failed`.
#[utoipa::path(post, path = "/api/callmanager/v1/conferences/{id}/participants", tag = "conferences", request_body = NewParticipant,
    params(("id" = String, Path, description = "Conference id")),
    responses((status = 202, description = "Being dialled", body = MemberView), (status = 400, description = "Bad input"),
        (status = 429, description = "max_participants reached")))]
async fn add(
    State(inner): State<Arc<Inner>>,
    Extension(ResolvedArg(id)): Extension<ResolvedArg>,
    body: Bytes,
) -> Result<(StatusCode, Json<MemberView>)> {
    let rooms = inner.active()?.rooms()?;
    let room = rooms.get(&id)?;
    let m = object(&body)?;
    if let Some(k) = m.keys().find(|k| k.as_str() != "to") {
        return Err(CallError::Invalid { field: k.chars().take(64).collect(), msg: "unknown field; expected to".into() });
    }
    let to = match m.get("to") {
        Some(Value::String(t)) => validate::party(t, &room.domain).map_err(|e| CallError::Invalid { field: "to".into(), msg: e })?,
        Some(v) => {
            return Err(CallError::Invalid { field: "to".into(), msg: format!("expected a string, found {}", mware_config::kind(v)) })
        }
        None => return Err(CallError::Invalid { field: "to".into(), msg: "required".into() }),
    };
    let member = rooms.add(&id, to).await?;
    Ok((StatusCode::ACCEPTED, Json(rooms.member_view(&id, &member))))
}

/// Ends a participant's call and takes it out of the room.
#[utoipa::path(delete, path = "/api/callmanager/v1/conferences/{id}/participants/{pid}", tag = "conferences",
    params(("id" = String, Path, description = "Conference id"), ("pid" = String, Path, description = "Participant id")),
    responses((status = 200, description = "Removed", body = MemberView), (status = 404, description = "No such participant")))]
async fn remove(
    State(inner): State<Arc<Inner>>,
    Extension(ResolvedArg(id)): Extension<ResolvedArg>,
    Path(ids): Path<(String, String)>,
) -> Result<Json<MemberView>> {
    let rooms = inner.active()?.rooms()?;
    Ok(Json(rooms.member_view(&id, &rooms.remove(&id, &ids.1, "removed through the API").await?)))
}

/// Mutes a participant (the others no longer hear it).
#[utoipa::path(post, path = "/api/callmanager/v1/conferences/{id}/participants/{pid}/mute", tag = "conferences",
    params(("id" = String, Path, description = "Conference id"), ("pid" = String, Path, description = "Participant id")),
    responses((status = 200, description = "Muted", body = MemberView)))]
async fn mute(
    State(inner): State<Arc<Inner>>,
    Extension(ResolvedArg(id)): Extension<ResolvedArg>,
    Path(ids): Path<(String, String)>,
) -> Result<Json<MemberView>> {
    let rooms = inner.active()?.rooms()?;
    Ok(Json(rooms.member_view(&id, &rooms.mute(&id, &ids.1, true).await?)))
}

/// Unmutes a participant.
#[utoipa::path(post, path = "/api/callmanager/v1/conferences/{id}/participants/{pid}/unmute", tag = "conferences",
    params(("id" = String, Path, description = "Conference id"), ("pid" = String, Path, description = "Participant id")),
    responses((status = 200, description = "Unmuted", body = MemberView)))]
async fn unmute(
    State(inner): State<Arc<Inner>>,
    Extension(ResolvedArg(id)): Extension<ResolvedArg>,
    Path(ids): Path<(String, String)>,
) -> Result<Json<MemberView>> {
    let rooms = inner.active()?.rooms()?;
    Ok(Json(rooms.member_view(&id, &rooms.mute(&id, &ids.1, false).await?)))
}
