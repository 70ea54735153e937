//! The server's limits against real TCP clients on loopback: a client that sends its
//! headers one byte a second, idle connections, a long poll that is not idle, a handler
//! past the request timeout, a streamed answer longer than that timeout, the connection
//! cap.

use axum::routing::get;
use mware_http::{serve, Limits, Stats};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

async fn start(limits: Limits) -> (String, Stats, CancellationToken) {
    let app = axum::Router::new()
        .route("/fast", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "done"
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let chunks = futures::stream::unfold(0u32, |i| async move {
                    if i == 5 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Some((Ok::<_, std::convert::Infallible>(format!("chunk{i};")), i + 1))
                });
                axum::body::Body::from_stream(chunks)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stats, cancel) = (Stats::default(), CancellationToken::new());
    tokio::spawn(serve(listener, app, limits, stats.clone(), cancel.clone()));
    (addr, stats, cancel)
}

/// Reads until the peer closes; returns what was read and how long it took.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let t0 = Instant::now();
    let mut out = vec![];
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(t0.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), Some(t0.elapsed())),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), None),
        }
    }
}

fn limits(header_ms: u64, idle_ms: u64, request_ms: u64, max: usize) -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(header_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        request_timeout: Duration::from_millis(request_ms),
        max_connections: max,
    }
}

#[tokio::test]
async fn a_client_sending_its_headers_one_byte_a_second_is_cut_off() {
    let (addr, _, _) = start(limits(1000, 60_000, 60_000, 16)).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let head = b"GET /fast HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let t0 = Instant::now();
    let mut cut = None;
    for b in head {
        if s.write_all(&[*b]).await.is_err() {
            cut = Some(t0.elapsed());
            break;
        }
        // A closed connection shows as a read of 0 bytes.
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1000), s.read(&mut probe)).await {
            cut = Some(t0.elapsed());
            break;
        }
    }
    let cut = cut.expect("the slow client was never disconnected");
    assert!(cut < Duration::from_secs(5), "disconnected after {cut:?}, the header read timeout is 1 s");
}

#[tokio::test]
async fn idle_connections_are_closed_and_long_polls_are_not_idle() {
    let (addr, stats, _) = start(limits(5000, 400, 60_000, 16)).await;
    // A connection that never sends anything.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let (_, took) = read_to_close(&mut silent, Duration::from_secs(5)).await;
    assert!(took.is_some_and(|t| t < Duration::from_secs(3)), "a silent connection stayed open: {took:?}");
    // A kept-alive connection after its answer.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (text, took) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(took.is_some(), "an idle kept-alive connection stayed open");
    // A request that takes 1.5 s with no byte moving (a long poll) is answered.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (text, _) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("done"), "the long poll was cut: {text:?}");
    assert!(stats.idle_closed() >= 2, "idle closes counted: {}", stats.idle_closed());
}

#[tokio::test]
async fn a_handler_past_the_request_timeout_gets_503_but_a_stream_is_not_cut() {
    let (addr, stats, _) = start(limits(5000, 60_000, 300, 16)).await;
    let c = reqwest::Client::new();
    let r = c.get(format!("http://{addr}/slow")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("request timeout (300 ms)"), "{v}");
    assert_eq!(v["retryable"], true);
    assert_eq!(stats.request_timeouts(), 1);
    // Five chunks over a second: the head came at once, the body is not cut.
    let body = c.get(format!("http://{addr}/stream")).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, "chunk0;chunk1;chunk2;chunk3;chunk4;");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let (addr, stats, _) = start(limits(60_000, 60_000, 60_000, 2)).await;
    let a = TcpStream::connect(&addr).await.unwrap();
    let b = TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let (_, took) = read_to_close(&mut c, Duration::from_secs(3)).await;
    assert!(took.is_some(), "the third connection was kept");
    assert_eq!(stats.refused(), 1);
    assert_eq!(stats.open(), 2);
    drop((a, b));
    // Once they are gone, a new client is served.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = reqwest::get(format!("http://{addr}/fast")).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn serve_returns_when_cancelled_once_requests_finish() {
    let limits = limits(5000, 60_000, 60_000, 16);
    let app = axum::Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            "done"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(serve(listener, app, limits, Stats::default(), cancel.clone()));
    let req = tokio::spawn(async move { reqwest::get(format!("http://{addr}/slow")).await.unwrap().text().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cancel.cancel();
    assert_eq!(req.await.unwrap(), "done", "the request in flight was finished");
    tokio::time::timeout(Duration::from_secs(3), server).await.expect("serve returned").unwrap();
}
