//! The HTTP API under `/api/devicemanager/v1`, with its OpenAPI description. Every route
//! is the group's (`Scope::Group`: any instance forwards to the active one). Submitting
//! jobs takes the operator's token or devicemanager's own (`devicemanager.token_env`),
//! never the API token that call scripts carry: a job reaches into the site's network.
//! So does reading them (results may carry device output such as a configuration); the
//! satellites' view is public.

use crate::engine::Active;
use crate::error::DevicesError;
use crate::handle::Inner;
use crate::store::{JobRow, ListFilter};
use crate::transport::QueueInfo;
use crate::validate;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use mware_host::{Access, ApiError, Problem, Routes, Scope};
use mware_jobs::JobState;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;

/// Longest long-poll (`wait_ms`).
pub const MAX_WAIT_MS: u64 = 60_000;
/// Most jobs one list returns.
pub const MAX_LIST: u32 = 1000;

impl IntoResponse for DevicesError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let problems: Vec<Problem> = match &self {
            DevicesError::Invalid(l) => l.iter().map(|p| Problem { field: p.field.clone(), message: p.message.clone() }).collect(),
            DevicesError::TooLarge { .. } => vec![Problem { field: "jobs".into(), message: self.to_string() }],
            _ => vec![],
        };
        ApiError::new(status, self.to_string()).retryable(status.is_server_error()).problems(problems).into_response()
    }
}

/// A job to run (the body of `POST /jobs`, and each entry of a batch). Described for the
/// OpenAPI document only: bodies are read by `validate` (strict JSON, every problem).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct JobRequest {
    /// `tcp.check`, `http.request`, `snmp.get`, `snmp.walk`, `snmp.set` or `ssh.exec`.
    kind: String,
    /// `host:port` (`[v6]:port`).
    target: String,
    /// The satellite whose pollers run it (one of `devicemanager.satellites`); none: the
    /// pool (or in-process without a broker).
    satellite: Option<String>,
    /// The kind's parameters (`community`, `oid`, `password`, ... see docs/services/devices.md).
    params: Option<Map<String, Value>>,
    /// The job must end within this many ms from its acceptance, or it ends `expired`
    /// (default `devicemanager.default_timeout_ms`).
    timeout_ms: Option<u64>,
    /// A key of the caller's: a second job with the same key is not stored again, its
    /// first id is answered.
    idempotency_key: Option<String>,
}

/// Many jobs in one call (all stored, or none); for the OpenAPI document, like [`JobRequest`].
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct BatchRequest {
    /// At most `devicemanager.max_batch`.
    jobs: Vec<JobRequest>,
}

/// A stored job's id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The id.
    pub id: String,
}

/// Stored jobs' ids, in the order of the request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchAccepted {
    /// The ids.
    pub ids: Vec<String>,
}

/// A job and how it went.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// `host:port`.
    pub target: String,
    /// Satellite (none: the pool or in-process).
    pub satellite: Option<String>,
    /// Parameters, secrets (community, password, headers) shown as `***`.
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// queued, running, done, failed or expired.
    pub state: JobState,
    /// What the kind returned (null until it ended).
    #[schema(value_type = Object)]
    pub result: Value,
    /// Why it failed or expired.
    pub error: Option<String>,
    /// Deliveries started (2 and more: its message came again after a poller died or the
    /// broker restarted).
    pub attempts: u32,
    /// The poller that reported last.
    pub poller: Option<String>,
    /// Handed to the broker (confirmed) or the in-process queue; false while the broker
    /// is unreachable.
    pub published: bool,
    /// Its time limit.
    pub timeout_ms: u64,
    /// Accepted at (RFC 3339 UTC).
    pub created_at: String,
    /// Must have ended by.
    pub deadline_at: String,
    /// First started at.
    pub started_at: Option<String>,
    /// Ended at.
    pub finished_at: Option<String>,
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

impl From<JobRow> for JobView {
    fn from(r: JobRow) -> Self {
        JobView {
            params: mware_jobs::kinds::redacted(&r.kind, &r.params),
            id: r.id,
            kind: r.kind,
            target: r.target,
            satellite: r.satellite,
            state: r.state,
            result: r.result,
            error: r.error,
            attempts: r.attempts,
            poller: r.poller,
            published: r.published,
            timeout_ms: r.timeout_ms,
            created_at: rfc3339(r.created_ms),
            deadline_at: rfc3339(r.deadline_ms),
            started_at: r.started_ms.map(rfc3339),
            finished_at: r.finished_ms.map(rfc3339),
        }
    }
}

/// Jobs, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobList {
    /// The jobs of this page, newest first.
    pub jobs: Vec<JobView>,
    /// How many jobs match the filter in all.
    pub total: u64,
    /// The cursor of the next page (`after=`), absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One satellite (or the pool).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SatelliteView {
    /// Satellite id (`null`: the pool).
    pub satellite: Option<String>,
    /// Its queue.
    pub queue: String,
    /// The queue as the broker sees it (absent in-process or while the broker is unreachable).
    pub broker: Option<QueueInfo>,
    /// Pollers heard from (heartbeats) and when, RFC 3339.
    pub pollers: BTreeMap<String, String>,
    /// The most recent heartbeat of any of its pollers.
    pub last_seen: Option<String>,
    /// Jobs stored and not ended, by state (queued, running).
    pub open_jobs: BTreeMap<String, u64>,
}

/// Satellites and the pool.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SatelliteList {
    /// `amqp` or `in-process`.
    pub transport: String,
    /// Connected to the broker now (always true in-process).
    pub connected: bool,
    /// The satellites, then the pool.
    pub satellites: Vec<SatelliteView>,
}

/// `?wait_ms=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct WaitQuery {
    /// Wait up to this many ms (at most 60000) for the job to end.
    wait_ms: Option<String>,
}

/// `?state=&satellite=&limit=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only jobs in this state.
    state: Option<String>,
    /// Only jobs of this satellite (`pool`: jobs without one).
    satellite: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<String>,
    /// The `next` of the previous page: only older jobs.
    after: Option<String>,
}

fn active(inner: &Inner) -> Result<Arc<Active>, DevicesError> {
    inner.active().ok_or_else(|| DevicesError::Unavailable("devicemanager is not running on this instance".into()))
}

/// Submit a job: stored before the answer, then run.
#[utoipa::path(post, path = "/api/devicemanager/v1/jobs", tag = "devicemanager", request_body = JobRequest,
    responses((status = 202, body = Accepted), (status = 400, body = ApiError), (status = 503, body = ApiError)))]
async fn submit(State(inner): State<Arc<Inner>>, body: Bytes) -> Result<(StatusCode, Json<Accepted>), DevicesError> {
    let a = active(&inner)?;
    let job = validate::one(&body, &a.cfg, &a.policy, inner.local())?;
    let id = a.submit(vec![job]).await?.remove(0);
    Ok((StatusCode::ACCEPTED, Json(Accepted { id })))
}

/// Submit many jobs in one call (all or none).
#[utoipa::path(post, path = "/api/devicemanager/v1/jobs:batch", tag = "devicemanager", request_body = BatchRequest,
    responses((status = 202, body = BatchAccepted), (status = 400, body = ApiError), (status = 413, body = ApiError), (status = 503, body = ApiError)))]
async fn submit_batch(State(inner): State<Arc<Inner>>, body: Bytes) -> Result<(StatusCode, Json<BatchAccepted>), DevicesError> {
    let a = active(&inner)?;
    let jobs = validate::batch(&body, &a.cfg, &a.policy, inner.local())?;
    let ids = a.submit(jobs).await?;
    Ok((StatusCode::ACCEPTED, Json(BatchAccepted { ids })))
}

/// One job; `wait_ms` waits for its end (long poll).
#[utoipa::path(get, path = "/api/devicemanager/v1/jobs/{id}", tag = "devicemanager", params(("id" = String, Path, description = "job id"), WaitQuery),
    responses((status = 200, body = JobView), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
async fn get_job(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<JobView>, DevicesError> {
    let a = active(&inner)?;
    if !validate::is_id(&id) {
        return Err(DevicesError::invalid("id", "expected a job id (letters, digits, '-'), found another text"));
    }
    let wait = match q.wait_ms.as_deref() {
        None => 0,
        Some(w) => match w.parse::<u64>() {
            Ok(n) if n <= MAX_WAIT_MS => n,
            _ => {
                return Err(DevicesError::invalid(
                    "wait_ms",
                    format!("expected a whole number of milliseconds from 0 to {MAX_WAIT_MS}, found {w:?}"),
                ))
            }
        },
    };
    match a.wait(&id, Duration::from_millis(wait)).await? {
        Some(r) => Ok(Json(r.into())),
        None => Err(DevicesError::NotFound(id)),
    }
}

/// Jobs, newest first, by state and satellite.
#[utoipa::path(get, path = "/api/devicemanager/v1/jobs", tag = "devicemanager", params(ListQuery),
    responses((status = 200, body = JobList), (status = 400, body = ApiError)))]
async fn list_jobs(State(inner): State<Arc<Inner>>, Query(q): Query<ListQuery>) -> Result<Json<JobList>, DevicesError> {
    let a = active(&inner)?;
    let mut problems = vec![];
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => match JobState::parse(s) {
            Some(st) => Some(st),
            None => {
                problems.push(mware_jobs::Problem {
                    field: "state".into(),
                    message: format!("expected queued, running, done, failed or expired, found {s:?}"),
                });
                None
            }
        },
    };
    let satellite = match q.satellite.as_deref() {
        None | Some("") => None,
        Some("pool") => Some(None),
        Some(s) if a.cfg.satellites.iter().any(|x| x == s) => Some(Some(s.to_string())),
        Some(s) => {
            let s: String = s.chars().take(64).collect();
            problems.push(mware_jobs::Problem {
                field: "satellite".into(),
                message: format!("expected pool or a satellite of devicemanager.satellites, found {s:?}"),
            });
            None
        }
    };
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=MAX_LIST).contains(&n) => n,
            _ => {
                problems.push(mware_jobs::Problem {
                    field: "limit".into(),
                    message: format!("expected a number from 1 to {MAX_LIST}, found {:?}", l.chars().take(20).collect::<String>()),
                });
                0
            }
        },
    };
    let after = match q.after.as_deref().map(cursor) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(p)) => {
            problems.push(p);
            None
        }
    };
    if !problems.is_empty() {
        return Err(DevicesError::Invalid(problems));
    }
    let (rows, total) = a.store.list(ListFilter { state, satellite, limit, after }).await?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| format!("{}:{}", r.created_ms, r.id))).flatten();
    Ok(Json(JobList { jobs: rows.into_iter().map(Into::into).collect(), total, next }))
}

/// The `after` cursor of a jobs page: `CREATED_MS:ID` of the last job of the previous page.
fn cursor(raw: &str) -> Result<(i64, String), mware_jobs::Problem> {
    let bad = || mware_jobs::Problem {
        field: "after".into(),
        message: format!("expected the `next` of a previous page (CREATED_MS:ID), found {:?}", raw.chars().take(40).collect::<String>()),
    };
    let (ms, id) = raw.split_once(':').ok_or_else(bad)?;
    let ms = ms.parse::<i64>().map_err(|_| bad())?;
    if id.is_empty() || id.len() > 64 {
        return Err(bad());
    }
    Ok((ms, id.to_string()))
}

/// Satellites: pollers heard from, queue depth, last seen; and the pool.
#[utoipa::path(get, path = "/api/devicemanager/v1/satellites", tag = "devicemanager",
    responses((status = 200, body = SatelliteList)))]
async fn satellites(State(inner): State<Arc<Inner>>) -> Result<Json<SatelliteList>, DevicesError> {
    let a = active(&inner)?;
    let counts = a.store.open_counts().await?;
    let seen = a.pollers.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let ids: Vec<Option<String>> = a.cfg.satellites.iter().cloned().map(Some).chain(std::iter::once(None)).collect();
    let mut out = vec![];
    for sat in ids {
        let key = sat.clone().unwrap_or_default();
        let pollers = seen.get(&key).cloned().unwrap_or_default();
        let last = pollers.values().max().copied();
        let open_jobs = counts.iter().filter(|(s, _, _)| *s == key).map(|(_, st, n)| (st.as_str().to_string(), *n)).collect();
        out.push(SatelliteView {
            queue: mware_jobs::amqp::job_queue(sat.as_deref()),
            broker: a.transport.queue(sat.as_deref()).await,
            pollers: pollers.into_iter().map(|(p, t)| (p, rfc3339(t))).collect(),
            last_seen: last.map(rfc3339),
            open_jobs,
            satellite: sat,
        });
    }
    Ok(Json(SatelliteList {
        transport: if inner.local() { "in-process".into() } else { "amqp".into() },
        connected: a.transport.connected(),
        satellites: out,
    }))
}

#[derive(OpenApi)]
#[openapi(
    paths(submit, submit_batch, get_job, list_jobs, satellites),
    components(schemas(JobRequest, BatchRequest, Accepted, BatchAccepted, JobView, JobList, SatelliteView, SatelliteList, QueueInfo, ApiError, Problem, JobState)),
    tags((name = "devicemanager", description = "Device jobs run by remote pollers through RabbitMQ (or in-process)"))
)]
struct ApiDoc;

/// The OpenAPI description of these routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The routes (all the group's).
pub(crate) fn routes(inner: Arc<Inner>) -> Routes {
    const G: Scope = Scope::Group;
    let s = |m: axum::routing::MethodRouter<Arc<Inner>>| m.with_state(inner.clone());
    Routes::new()
        .post("/api/devicemanager/v1/jobs", Access::OwnToken, G, s(post(submit)))
        .post("/api/devicemanager/v1/jobs:batch", Access::OwnToken, G, s(post(submit_batch)))
        .get("/api/devicemanager/v1/jobs", Access::OwnToken, G, s(get(list_jobs)))
        .get("/api/devicemanager/v1/jobs/{id}", Access::OwnToken, G, s(get(get_job)))
        .get("/api/devicemanager/v1/satellites", Access::Public, G, s(get(satellites)))
}
