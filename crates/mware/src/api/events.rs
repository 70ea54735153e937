//! `GET /api/v1/events`: the instance's event channel as server-sent events.
//!
//! Each SSE message has the event's id (`id:`), its type (`event:` activity, service,
//! config, item, call) and the event as JSON (`data:`). A client that reconnects with
//! `Last-Event-ID` (browsers do it by themselves) or `?since=ID` first gets what it
//! missed from the kept ring, then live events; when the ring no longer holds
//! everything it missed, or it falls behind, it gets one `lagged` message and should
//! read the state again (`/api/v1/status`). The stream ends when the daemon stops.

use super::AppState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use mware_host::Event;
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

/// Query of `/api/v1/events`.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct EventsQuery {
    /// Send kept events with an id above this one first (`0`: every kept event).
    since: Option<u64>,
}

fn sse(e: &Event) -> SseEvent {
    let kind = serde_json::to_value(e).ok().and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string));
    SseEvent::default().id(e.id.to_string()).event(kind.unwrap_or_else(|| "event".into())).json_data(e).unwrap_or_default()
}

fn lagged(why: &str) -> SseEvent {
    SseEvent::default().event("lagged").data(why)
}

/// The instance's state changes as server-sent events.
#[utoipa::path(get, path = "/api/v1/events", params(EventsQuery),
    responses((status = 200, description = "text/event-stream: one message per event (activity, service, config, item, call), id = event id; `lagged` when events were missed")))]
pub async fn stream(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let events = st.0.host.events().clone();
    // Subscribe before reading the ring, so nothing falls between the two.
    let live = BroadcastStream::new(events.subscribe());
    let from = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok()).or(q.since);
    let (backlog, missed) = match from {
        Some(id) => events.since(id),
        None => (vec![], false),
    };
    let mut seen = backlog.last().map(|e| e.id).or(from).unwrap_or_else(|| events.last_id());
    let head = missed.then(|| lagged("some events were dropped from the ring before this client asked for them; read /api/v1/status"));
    let first = stream::iter(head.into_iter().chain(backlog.iter().map(|e| sse(e))).map(Ok).collect::<Vec<_>>());
    let rest = live.filter_map(move |item: Result<Arc<Event>, BroadcastStreamRecvError>| {
        let out = match item {
            Ok(e) if e.id <= seen => None,
            Ok(e) => {
                seen = e.id;
                Some(sse(&e))
            }
            Err(BroadcastStreamRecvError::Lagged(n)) => Some(lagged(&format!("this client fell {n} events behind; read /api/v1/status"))),
        };
        std::future::ready(out.map(Ok))
    });
    let stop = st.0.shutdown.clone();
    Sse::new(first.chain(rest).take_until(stop.cancelled_owned())).keep_alive(KeepAlive::default())
}
