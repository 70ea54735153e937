//! Rendering of JSON answers off the runtime's worker threads: a large list is
//! serialised on the blocking pool, at most [`RENDERS`] at a time, so that clients asking
//! for big documents queue behind each other instead of taking every core from the
//! request workers (and `/healthz`) and from the coordinator thread.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::Semaphore;

/// Answers rendered at once (the daemon runs on small hosts: two cores is common).
pub const RENDERS: usize = 2;

static SLOTS: Semaphore = Semaphore::const_new(RENDERS);

/// `value` as an `application/json` answer, serialised on the blocking pool.
pub async fn render_json<T: Serialize + Send + 'static>(value: T) -> Response {
    // The semaphore is never closed: a slot is always given, in turn.
    let _slot = SLOTS.acquire().await.ok();
    match tokio::task::spawn_blocking(move || serde_json::to_vec(&value)).await {
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot render the answer: {e}")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot render the answer: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_json_with_its_content_type() {
        let r = render_json(serde_json::json!({"a": [1, 2]})).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        assert_eq!(&body[..], br#"{"a":[1,2]}"#);
    }
}
