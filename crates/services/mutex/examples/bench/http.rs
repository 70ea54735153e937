//! The mware side's HTTP clients: one connection per simulated call script.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// One simulated call script's HTTP/1.1 connection (hyper's client, no pool).
pub struct Conn {
    tx: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    host: String,
}

impl Conn {
    async fn open(base: &str) -> anyhow::Result<Conn> {
        let host = base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&host).await?;
        stream.set_nodelay(true)?;
        let (tx, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Conn { tx, host })
    }

    async fn post(&mut self, path: &str, body: String) -> anyhow::Result<(u16, bytes::Bytes)> {
        use http_body_util::BodyExt;
        let req = hyper::Request::post(path)
            .header("host", &self.host)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
        self.tx.ready().await?;
        let r = self.tx.send_request(req).await?;
        let status = r.status().as_u16();
        Ok((status, r.into_body().collect().await?.to_bytes()))
    }
}

/// The HTTP client the mware side uses: hyper (default) or reqwest (`--reqwest`).
pub enum Http {
    Hyper(Conn),
    Reqwest(reqwest::Client, String),
}

impl Http {
    async fn post(&mut self, path: &str, body: String) -> anyhow::Result<(u16, bytes::Bytes)> {
        match self {
            Http::Hyper(c) => c.post(path, body).await,
            Http::Reqwest(c, base) => {
                let r = c.post(format!("{base}{path}")).header("content-type", "application/json").body(body).send().await?;
                Ok((r.status().as_u16(), r.bytes().await?))
            }
        }
    }
}

/// The part of a grant the bench needs.
#[derive(serde::Deserialize)]
struct Granted {
    token: u64,
}

/// One acquire + release; returns (time to the grant, the case's figure: the pair when
/// uncontended, the wait for the grant when contended). Bodies are written and read
/// as a call script would: only the fields it needs.
pub async fn http_pair(http: &mut Http, name: &str, owner: &str, wait_ms: u64) -> anyhow::Result<(Duration, Duration)> {
    let t0 = Instant::now();
    let path = format!("/api/v1/domains/bench.example.ru/mutexes/{name}");
    let body = format!(r#"{{"owner":"{owner}","ttl_ms":30000,"wait_ms":{wait_ms}}}"#);
    let (s, v) = http.post(&format!("{path}/acquire"), body).await?;
    anyhow::ensure!(s == 200, "acquire answered {s}: {}", String::from_utf8_lossy(&v));
    let token = serde_json::from_slice::<Granted>(&v)?.token;
    let waited = t0.elapsed();
    let (s, v) = http.post(&format!("{path}/release"), format!(r#"{{"owner":"{owner}","token":{token}}}"#)).await?;
    anyhow::ensure!(s == 200, "release answered {s}: {}", String::from_utf8_lossy(&v));
    Ok((waited, if wait_ms == 0 { t0.elapsed() } else { waited }))
}

/// One client per simulated call script, each with its own connection.
pub async fn clients(base: &str, n: usize, reqwest_client: Option<&reqwest::Client>) -> anyhow::Result<Arc<Vec<tokio::sync::Mutex<Http>>>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(tokio::sync::Mutex::new(match reqwest_client {
            Some(c) => Http::Reqwest(c.clone(), base.to_string()),
            None => Http::Hyper(Conn::open(base).await?),
        }));
    }
    Ok(Arc::new(v))
}
