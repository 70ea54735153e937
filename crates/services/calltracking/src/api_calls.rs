//! The HTTP API of call events: the core posts them (`POST /api/calltracking/v1/events`,
//! the API token), and clients read a domain's live and recently ended calls
//! (`GET /api/calltracking/v1/{domain}/calls?since=`), and the states of the external
//! numbers a domain watches (`GET /api/calltracking/v1/{domain}/numbers`).

use crate::calls::{Dialog, EndedCall};
use crate::error::TrackError;
use crate::handle::CallTracking;
use crate::numbers::NumberView;
use crate::tracker::Applied;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use mware_host::{ApiError, Problem};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

/// Most ended calls in one answer.
const MAX_ENDED: usize = 500;

/// What a POST of events did, and the events refused (each with its path).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PostAnswer {
    /// Counts.
    #[serde(flatten)]
    pub applied: Applied,
    /// Events refused: the JSON path of the field at fault and why.
    pub rejected: Vec<Problem>,
}

/// A domain's calls.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallsAnswer {
    /// The domain (canonical).
    pub domain: String,
    /// Its live calls.
    pub live: Vec<Dialog>,
    /// Its ended calls since `since` (newest first, at most 500).
    pub ended: Vec<EndedCall>,
    /// With `hunt` or `queue`: the callers whose last call to it went unanswered (newest
    /// first, those who gave up among them): whom to call back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed: Option<Vec<String>>,
}

/// The external numbers a domain watches.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NumbersAnswer {
    /// The domain (canonical).
    pub domain: String,
    /// Each number's state, its age, and its subscription.
    pub numbers: Vec<NumberView>,
}

/// `?since=` (ms since the Unix epoch; default 0: all the journal holds).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CallsQuery {
    /// Only calls that ended at or after this, ms since the Unix epoch.
    pub since: Option<u64>,
    /// Only calls to this hunt number or queue (its user part), with the members that
    /// rang and the one that answered, and the missed callers.
    pub hunt: Option<String>,
    /// Only calls that went through this personal queue (as the core named it), with how
    /// long each caller waited and who gave up, and the missed callers.
    pub queue: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    paths(post_events, calls, numbers),
    components(schemas(
        PostAnswer,
        Applied,
        CallsAnswer,
        Dialog,
        EndedCall,
        crate::calls::CallEvent,
        crate::calls::Kind,
        NumbersAnswer,
        NumberView,
        ApiError
    ))
)]
pub(crate) struct CallsDoc;

type Result<T> = std::result::Result<T, TrackError>;

/// Call events from the core (Kamailio's dialog module, `examples/kamailio`): an array
/// of `{event, id, from, to, domain, code?, at_ms}`. Good events are applied in order;
/// the others are refused each with its path (a batch is never lost for one bad event).
#[utoipa::path(post, path = "/api/calltracking/v1/events", tag = "calltracking",
    request_body = Vec<crate::calls::CallEvent>,
    responses((status = 200, description = "Applied; refused events named", body = PostAnswer),
              (status = 400, description = "Not JSON, or not an array of events", body = ApiError),
              (status = 503, description = "Not active here, or the journal could not be written (retryable)", body = ApiError)))]
pub(crate) async fn post_events(State(svc): State<CallTracking>, body: Bytes) -> Result<Json<PostAnswer>> {
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| TrackError::Invalid(vec![(String::new(), format!("expected a JSON array of events, found: {e}"))]))?;
    let (events, errs) = crate::validate::events(&v);
    if events.is_empty() && !errs.is_empty() && !v.is_array() {
        return Err(TrackError::Invalid(errs));
    }
    let run = svc.inner.running().ok_or_else(|| TrackError::Coord("call tracking is not running here".into()))?;
    svc.inner.metrics.events_dropped.inc_by(errs.len() as u64);
    for (path, msg) in errs.iter().take(3) {
        tracing::warn!(path, msg, "a call event from the core was refused");
    }
    let applied = run.tracker.apply(events).await?;
    Ok(Json(PostAnswer { applied, rejected: errs.into_iter().map(|(field, message)| Problem { field, message }).collect() }))
}

/// A domain's live calls and its calls ended since `since`, from the journal; with
/// `hunt`, only the calls to that hunt number and its missed callers; with `queue`, only
/// the calls through that personal queue (each with `waited_ms` and `gave_up`) and its
/// missed callers.
#[utoipa::path(get, path = "/api/calltracking/v1/{domain}/calls", tag = "calltracking",
    params(("domain" = String, Path, description = "Domain"), CallsQuery),
    responses((status = 200, description = "Live and ended calls", body = CallsAnswer),
              (status = 400, description = "Bad domain", body = ApiError),
              (status = 503, description = "Not active here (retryable)", body = ApiError)))]
pub(crate) async fn calls(
    State(svc): State<CallTracking>,
    Path(domain): Path<String>,
    Query(q): Query<CallsQuery>,
) -> Result<Json<CallsAnswer>> {
    let domain = crate::validate::domain(&domain).map_err(|e| TrackError::Invalid(vec![("domain".into(), e)]))?;
    let run = svc.inner.running().ok_or_else(|| TrackError::Coord("call tracking is not running here".into()))?;
    let mut ended = run.tracker.journal().read(&domain, q.since.unwrap_or(0), MAX_ENDED).await?;
    let mut live = run.tracker.live(&domain);
    let mut missed = None;
    if let Some(h) = &q.hunt {
        crate::validate::user(h).map_err(|e| TrackError::Invalid(vec![("hunt".into(), e)]))?;
        ended.retain(|e| &e.dialog.to == h);
        live.retain(|d| &d.to == h);
        missed = Some(missed_callers(&ended));
    }
    if let Some(qn) = &q.queue {
        crate::validate::user(qn).map_err(|e| TrackError::Invalid(vec![("queue".into(), e)]))?;
        ended.retain(|e| e.dialog.queue.as_ref() == Some(qn));
        live.retain(|d| d.queue.as_ref() == Some(qn));
        missed = Some(missed_callers(&ended));
    }
    Ok(Json(CallsAnswer { live, domain, ended, missed }))
}

/// The states of the external numbers `domain` watches (`calltracking.external`), as
/// the dialog event package of their servers reports them, with the age of each state.
#[utoipa::path(get, path = "/api/calltracking/v1/{domain}/numbers", tag = "calltracking",
    params(("domain" = String, Path, description = "Domain")),
    responses((status = 200, description = "The domain's external numbers", body = NumbersAnswer),
              (status = 400, description = "Bad domain", body = ApiError),
              (status = 503, description = "Not active here (retryable)", body = ApiError)))]
pub(crate) async fn numbers(State(svc): State<CallTracking>, Path(domain): Path<String>) -> Result<Json<NumbersAnswer>> {
    let domain = crate::validate::domain(&domain).map_err(|e| TrackError::Invalid(vec![("domain".into(), e)]))?;
    let run = svc.inner.running().ok_or_else(|| TrackError::Coord("call tracking is not running here".into()))?;
    let numbers = run.tracker.numbers().list(Some(&domain), mware_config::now_ms());
    Ok(Json(NumbersAnswer { domain, numbers }))
}

/// The callers whose last call (of `ended`, newest first) went unanswered, newest first.
fn missed_callers(ended: &[EndedCall]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ended.iter().filter(|e| seen.insert(e.dialog.from.clone()) && !e.answered).map(|e| e.dialog.from.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::Kind;

    fn ended(from: &str, answered: bool, at: u64) -> EndedCall {
        let dialog = Dialog {
            id: format!("{from}{at}"),
            domain: "d".into(),
            from: from.into(),
            to: "hunt1".into(),
            state: Kind::Ringing,
            since_ms: at,
            answered_ms: None,
            rang: vec![],
            answered_by: None,
            queue: None,
        };
        EndedCall::new(dialog, at, answered, if answered { 0 } else { 487 })
    }

    #[test]
    fn missed_callers_are_those_whose_last_call_went_unanswered() {
        // Newest first: a called back later (answered), b twice unanswered, c once.
        let list = [ended("a", true, 9), ended("b", false, 8), ended("a", false, 7), ended("c", false, 6), ended("b", false, 5)];
        assert_eq!(missed_callers(&list), ["b", "c"]);
    }
}
