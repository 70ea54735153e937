//! The registrar adapter: Kamailio's usrloc over JSON-RPC (`jsonrpcs` on HTTP), the one
//! place that knows Kamailio's method names and answer shapes. `ul.add` binds a permanent
//! contact (expires 0), `ul.rm` / `ul.rm_contact` remove, `ul.dump` lists every binding
//! with its Path (RFC 3327), so a caller can find the contacts that came through an edge
//! proxy. A "not found" answer is `Ok(false)` (removals) or no binding (a
//! lookup), not an error.

use serde_json::{json, Value};
use std::time::Duration;

/// The usrloc table every method names.
const TABLE: &str = "location";

/// What can go wrong talking to the registrar.
#[derive(Debug, thiserror::Error)]
pub enum RegistrarError {
    /// The HTTP request failed or its answer was not JSON.
    #[error("registrar {url}: {msg}")]
    Transport {
        /// The JSON-RPC URL.
        url: String,
        /// What failed.
        msg: String,
    },
    /// The registrar answered with a JSON-RPC error.
    #[error("registrar {method}: error {code}: {message}")]
    Rpc {
        /// The method called.
        method: String,
        /// The JSON-RPC error code (Kamailio uses HTTP-like codes: 404, 500).
        code: i64,
        /// Its message.
        message: String,
    },
}

/// One contact bound to an AoR, as `ul.dump` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The AoR (`user@domain` with `use_domain`).
    pub aor: String,
    /// The contact URI.
    pub contact: String,
    /// The Path header value the contact was registered with (`<sip:sg1;lr>,...`), if any.
    pub path: Option<String>,
    /// Seconds until it expires; `None` for a permanent contact.
    pub expires_s: Option<i64>,
    /// The registering phone's User-Agent, if it sent one.
    pub user_agent: Option<String>,
}

/// A client of one registrar's JSON-RPC endpoint (cheap to clone).
#[derive(Debug, Clone)]
pub struct Registrar {
    url: String,
    http: reqwest::Client,
}

impl Registrar {
    /// A client of `url` (`http://10.0.0.5:5071/RPC`); each call times out after 5 s.
    pub fn new(url: &str) -> Result<Registrar, RegistrarError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| RegistrarError::Transport { url: url.into(), msg: e.to_string() })?;
        Ok(Registrar { url: url.into(), http })
    }

    /// The JSON-RPC URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Adds a permanent contact (expires 0, q 1.0) to `aor`, with `path` ("" for none).
    pub async fn add(&self, aor: &str, contact: &str, path: &str) -> Result<(), RegistrarError> {
        self.call("ul.add", json!([TABLE, aor, contact, 0, 1.0, path, 0, 0, 0])).await.map(|_| ())
    }

    /// Removes every contact of `aor`; `false` when the registrar said it had none
    /// (Kamailio 5.6 answers success to an AoR it does not have).
    pub async fn rm(&self, aor: &str) -> Result<bool, RegistrarError> {
        found(self.call("ul.rm", json!([TABLE, aor])).await)
    }

    /// Removes one contact of `aor`; `false` when it was not bound.
    pub async fn rm_contact(&self, aor: &str, contact: &str) -> Result<bool, RegistrarError> {
        found(self.call("ul.rm_contact", json!([TABLE, aor, contact])).await)
    }

    /// Binds `aor` to `contact` alone, permanently (what was bound before is removed).
    pub async fn bind(&self, aor: &str, contact: &str) -> Result<(), RegistrarError> {
        self.rm(aor).await?;
        self.add(aor, contact, "").await
    }

    /// Every binding of the registrar.
    pub async fn dump(&self) -> Result<Vec<Binding>, RegistrarError> {
        Ok(parse_dump(&self.call("ul.dump", json!([])).await?))
    }

    /// The contacts bound to `aor` (none when it has none).
    pub async fn lookup(&self, aor: &str) -> Result<Vec<Binding>, RegistrarError> {
        match self.call("ul.lookup", json!([TABLE, aor])).await {
            Ok(v) => Ok(parse_aor(aor, &v)),
            Err(e) if e.is_not_found() => Ok(vec![]),
            Err(e) => Err(e),
        }
    }

    /// Calls any JSON-RPC method of the core at this endpoint (e.g. the dialog module's
    /// `dlg.list`); its `result`.
    pub async fn call_raw(&self, method: &str, params: Value) -> Result<Value, RegistrarError> {
        self.call(method, params).await
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, RegistrarError> {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        let tr = |e: reqwest::Error| RegistrarError::Transport { url: self.url.clone(), msg: e.to_string() };
        let v: Value = self.http.post(&self.url).json(&body).send().await.map_err(tr)?.json().await.map_err(tr)?;
        match v.get("error") {
            Some(e) => Err(RegistrarError::Rpc {
                method: method.into(),
                code: e["code"].as_i64().unwrap_or(0),
                message: e["message"].as_str().unwrap_or("").chars().take(200).collect(),
            }),
            None => Ok(v["result"].clone()),
        }
    }
}

fn found(r: Result<Value, RegistrarError>) -> Result<bool, RegistrarError> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

impl RegistrarError {
    /// Whether the registrar said the AoR or contact is not there (Kamailio 5.6 answers
    /// 404 to some methods and 500 "AOR not found" to others).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistrarError::Rpc { code, message, .. } if *code == 404 || message.to_ascii_lowercase().contains("not found"))
    }
}

/// The bindings of a `ul.dump` answer.
pub fn parse_dump(v: &Value) -> Vec<Binding> {
    let mut out = vec![];
    for d in v["Domains"].as_array().into_iter().flatten() {
        for a in d["Domain"]["AoRs"].as_array().into_iter().flatten() {
            let aor = a["Info"]["AoR"].as_str().unwrap_or_default();
            out.extend(contacts(aor, &a["Info"]["Contacts"]));
        }
    }
    out
}

/// The bindings of a `ul.lookup` answer.
fn parse_aor(aor: &str, v: &Value) -> Vec<Binding> {
    let aor = v["AoR"].as_str().unwrap_or(aor);
    contacts(aor, &v["Contacts"])
}

fn contacts(aor: &str, list: &Value) -> Vec<Binding> {
    let text = |c: &Value, k: &str| c[k].as_str().filter(|s| !s.is_empty() && *s != "[not set]").map(str::to_string);
    let mut out = vec![];
    for c in list.as_array().into_iter().flatten() {
        let c = &c["Contact"];
        let Some(contact) = c["Address"].as_str() else { continue };
        let expires_s = match &c["Expires"] {
            Value::Number(n) => n.as_i64(),
            _ => None, // "permanent"
        };
        out.push(Binding { aor: aor.into(), contact: contact.into(), path: text(c, "Path"), expires_s, user_agent: text(c, "User-Agent") });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_gives_each_contact_with_its_path() {
        let v = json!({"Domains": [{"Domain": {"Domain": "location", "AoRs": [
            {"Info": {"AoR": "a@d", "Contacts": [
                {"Contact": {"Address": "sip:a@1.2.3.4:5060", "Expires": "permanent", "Path": "[not set]"}},
                {"Contact": {"Address": "sip:a@5.6.7.8:5062", "Expires": 590, "Path": "<sip:127.0.0.1:5070;lr>", "User-Agent": "x"}}
            ]}}
        ]}}]});
        let b = parse_dump(&v);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].path.as_deref(), b[0].expires_s), (None, None));
        assert_eq!((b[1].path.as_deref(), b[1].expires_s), (Some("<sip:127.0.0.1:5070;lr>"), Some(590)));
        assert_eq!(b[1].user_agent.as_deref(), Some("x"));
    }
}
