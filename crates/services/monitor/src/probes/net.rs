//! `tcp` (a connection opens) and `http` (a GET answers the expected status, and its
//! body contains the expected text).

/// Bodies larger than this are read only this far for `body_contains`.
const MAX_BODY: usize = 1 << 20;

/// A `tcp` probe.
pub struct Tcp {
    /// `host:port`.
    pub target: String,
}

impl Tcp {
    /// Opens a connection and closes it.
    pub async fn check(&self) -> Result<String, String> {
        match tokio::net::TcpStream::connect(&self.target).await {
            Ok(s) => {
                let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| self.target.clone());
                Ok(format!("connected to {peer}"))
            }
            Err(e) => Err(format!("cannot connect to {}: {e}", self.target)),
        }
    }
}

/// An `http` probe.
pub struct Http {
    /// The shared client (no TLS, no redirects followed).
    pub client: reqwest::Client,
    /// The URL.
    pub url: String,
    /// The expected status.
    pub status: u16,
    /// Text the body must contain.
    pub body_contains: Option<String>,
}

impl Http {
    /// GETs the URL.
    pub async fn check(&self) -> Result<String, String> {
        let mut resp = self.client.get(&self.url).send().await.map_err(|e| format!("GET {}: {}", self.url, chain(&e)))?;
        let got = resp.status().as_u16();
        if got != self.status {
            return Err(format!("GET {} answered {got}, expected {}", self.url, self.status));
        }
        let Some(want) = &self.body_contains else {
            return Ok(format!("GET {} answered {got}", self.url));
        };
        let mut body: Vec<u8> = vec![];
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {}: reading the body: {}", self.url, chain(&e)))? {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_BODY {
                break;
            }
        }
        if String::from_utf8_lossy(&body).contains(want.as_str()) {
            Ok(format!("GET {} answered {got} with {want:?} in its body", self.url))
        } else {
            Err(format!("GET {} answered {got} but its body ({} bytes) does not contain {want:?}", self.url, body.len()))
        }
    }
}

/// An error with its causes.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
