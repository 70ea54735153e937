//! The conference mixer: Janus AudioBridge (Debian's `janus`, `examples/janus/`) driven
//! over its HTTP API. mware does the SIP side of each participant and Janus the audio:
//! a participant is a plain RTP stream between the phone and a port of the room.
//!
//! Janus's REST transport does not bind a session to a connection: any instance that
//! knows a session's id can use it and keep it alive, which is what lets the next active
//! instance go on with a conference (the ids are data). Requests that Janus answers
//! asynchronously (a `join`) are read back from the session's event queue; one such
//! read at a time ([`Mixer::join`] holds a lock), matching its transaction id.

use crate::error::CallError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// A participant's place in a room, as Janus gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// The Janus handle the participant was joined through (one per participant).
    pub handle: u64,
    /// The participant's id in the room.
    pub id: u64,
    /// Where the phone must send its RTP: the room's address.
    pub rtp_ip: String,
    /// And port.
    pub rtp_port: u16,
}

/// A Janus session.
pub struct Mixer {
    http: reqwest::Client,
    url: String,
    session: u64,
    control: u64,
    events: tokio::sync::Mutex<()>,
}

fn err(what: &str, e: impl std::fmt::Display) -> CallError {
    CallError::Sip(format!("mixer: {what}: {e}"))
}

fn tx() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Mixer {
    /// A new session at `url` (`http://127.0.0.1:8088/janus`), with a control handle.
    pub async fn connect(url: &str) -> Result<Mixer, CallError> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(40)).build().map_err(|e| err("client", e))?;
        let v = post(&http, url, json!({"janus": "create", "transaction": tx()})).await?;
        let session = v["data"]["id"].as_u64().ok_or_else(|| err("create", format!("no session id in {v}")))?;
        let mut m = Mixer { http, url: url.trim_end_matches('/').to_string(), session, control: 0, events: Default::default() };
        m.control = m.attach().await?;
        Ok(m)
    }

    /// Goes on with a session (and its control handle) another instance created.
    pub fn resume(url: &str, session: u64, control: u64) -> Result<Mixer, CallError> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(40)).build().map_err(|e| err("client", e))?;
        Ok(Mixer { http, url: url.trim_end_matches('/').to_string(), session, control, events: Default::default() })
    }

    /// The control handle's id (rooms are created, muted and listed through it).
    pub fn control(&self) -> u64 {
        self.control
    }

    /// The session's id.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Keeps the session alive (Janus ends a silent one after its `session_timeout`).
    pub async fn keepalive(&self) -> Result<(), CallError> {
        post(&self.http, &format!("{}/{}", self.url, self.session), json!({"janus": "keepalive", "transaction": tx()})).await.map(|_| ())
    }

    async fn attach(&self) -> Result<u64, CallError> {
        let body = json!({"janus": "attach", "plugin": "janus.plugin.audiobridge", "transaction": tx()});
        let v = post(&self.http, &format!("{}/{}", self.url, self.session), body).await?;
        v["data"]["id"].as_u64().ok_or_else(|| err("attach", format!("no handle id in {v}")))
    }

    /// A synchronous AudioBridge request on `handle`: its `plugindata.data`.
    async fn request(&self, handle: u64, body: Value) -> Result<Value, CallError> {
        let what = body["request"].as_str().unwrap_or("request").to_string();
        let msg = json!({"janus": "message", "transaction": tx(), "body": body});
        let v = post(&self.http, &format!("{}/{}/{handle}", self.url, self.session), msg).await?;
        plugin_data(&what, &v)
    }

    /// Creates room `room` for plain RTP participants.
    pub async fn create_room(&self, room: u64, name: &str) -> Result<(), CallError> {
        self.create_recorded_room(room, name, 0, None).await
    }

    /// Creates room `room` with `groups` AudioBridge groups (`g1`, `g2`, …, whose audio
    /// is forwarded to tell who is talking: [`crate::talk`]),
    /// and when `record` is `(dir, file)` has Janus write the mix to `dir/file` (a 8 kHz
    /// mono 16-bit WAV; Janus writes while the room has someone in it and closes the
    /// file when the room is destroyed).
    ///
    /// A recorded room mixes at 8 kHz, the rate of its G.711 phones: Janus 1.1 brings
    /// G.711 to a higher room rate by inserting zeros between the samples (no filter),
    /// which mirrors every tone of a 16 kHz recording (440 Hz is also at 7560 Hz). The
    /// phones do not hear it (Janus takes every other sample back to 8 kHz for them).
    pub async fn create_recorded_room(&self, room: u64, name: &str, groups: u32, record: Option<(&str, &str)>) -> Result<(), CallError> {
        let mut body = json!({"request": "create", "room": room, "description": name, "sampling_rate": 16000,
            "allow_rtp_participants": true, "audiolevel_event": false});
        if groups > 0 {
            body["groups"] = json!((1..=groups).map(group).collect::<Vec<_>>());
        }
        if let Some((dir, file)) = record {
            body["sampling_rate"] = json!(8000);
            body["record"] = json!(true);
            body["record_dir"] = json!(dir);
            body["record_file"] = json!(file);
        }
        self.request(self.control, body).await.map(|_| ())
    }

    /// Joins a phone that sends and receives PCMU at `ip:port` to `room` (in `group`,
    /// when the room has groups).
    pub async fn join(&self, room: u64, display: &str, ip: &str, port: u16, group: Option<&str>) -> Result<Joined, CallError> {
        let handle = self.attach().await?;
        let t = tx();
        let mut body = json!({"request": "join", "room": room, "display": display, "codec": "pcmu",
            "rtp": {"ip": ip, "port": port, "payload_type": 0}});
        if let Some(g) = group {
            body["group"] = json!(g);
        }
        let _one_reader = self.events.lock().await;
        let msg = json!({"janus": "message", "transaction": t, "body": body});
        post(&self.http, &format!("{}/{}/{handle}", self.url, self.session), msg).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            let url = format!("{}/{}?maxev=10", self.url, self.session);
            let r = self.http.get(&url).send().await.map_err(|e| err("events", e))?;
            let v: Value = r.json().await.map_err(|e| err("events", e))?;
            let evs = if v.is_array() { v.as_array().cloned().unwrap_or_default() } else { vec![v] };
            if let Some(e) = evs.iter().find(|e| e["transaction"] == t.as_str()) {
                let d = plugin_data("join", e)?;
                let id = d["id"].as_u64().ok_or_else(|| err("join", format!("no participant id in {d}")))?;
                let rtp_ip = d["rtp"]["ip"].as_str().unwrap_or_default().to_string();
                let rtp_port = d["rtp"]["port"].as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
                if rtp_ip.is_empty() || rtp_port == 0 {
                    return Err(err("join", format!("no RTP address in {d}")));
                }
                return Ok(Joined { handle, id, rtp_ip, rtp_port });
            }
        }
        Err(err("join", "no answer within 10 s"))
    }

    /// Mutes (or unmutes) a participant.
    pub async fn mute(&self, room: u64, id: u64, muted: bool) -> Result<(), CallError> {
        let request = if muted { "mute" } else { "unmute" };
        self.request(self.control, json!({"request": request, "room": room, "id": id})).await.map(|_| ())
    }

    /// Removes a participant from the room and drops its handle.
    pub async fn kick(&self, room: u64, p: &Joined) -> Result<(), CallError> {
        self.request(self.control, json!({"request": "kick", "room": room, "id": p.id})).await?;
        let body = json!({"janus": "detach", "transaction": tx()});
        post(&self.http, &format!("{}/{}/{}", self.url, self.session, p.handle), body).await.map(|_| ())
    }

    /// The room's participants as Janus lists them (`id`, `display`, `muted`, `setup`).
    pub async fn participants(&self, room: u64) -> Result<Vec<Value>, CallError> {
        let d = self.request(self.control, json!({"request": "listparticipants", "room": room})).await?;
        Ok(d["participants"].as_array().cloned().unwrap_or_default())
    }

    /// Moves the participant joined through `handle` to `group` of its room (Janus
    /// answers a `configure` later, in the session's events; nobody waits for it).
    pub async fn set_group(&self, handle: u64, group: &str) -> Result<(), CallError> {
        let msg = json!({"janus": "message", "transaction": tx(), "body": {"request": "configure", "group": group}});
        post(&self.http, &format!("{}/{}/{handle}", self.url, self.session), msg).await.map(|_| ())
    }

    /// Has Janus send `group`'s mix of `room` as PCMU with `ssrc` to `to`; the
    /// forwarder's id.
    pub async fn forward(&self, room: u64, group: &str, to: std::net::SocketAddr, ssrc: u32) -> Result<u64, CallError> {
        let body = json!({"request": "rtp_forward", "room": room, "group": group, "host": to.ip().to_string(),
            "port": to.port(), "codec": "pcmu", "ptype": 0, "ssrc": ssrc, "always_on": false});
        let d = self.request(self.control, body).await?;
        d["stream_id"].as_u64().ok_or_else(|| err("rtp_forward", format!("no stream_id in {d}")))
    }

    /// Stops a forwarder.
    pub async fn stop_forward(&self, room: u64, stream_id: u64) -> Result<(), CallError> {
        self.request(self.control, json!({"request": "stop_rtp_forward", "room": room, "stream_id": stream_id})).await.map(|_| ())
    }

    /// The room's forwarders: id and where each one sends.
    pub async fn forwarders(&self, room: u64) -> Result<Vec<(u64, String, u16)>, CallError> {
        let d = self.request(self.control, json!({"request": "listforwarders", "room": room})).await?;
        let all = d["rtp_forwarders"].as_array().cloned().unwrap_or_default();
        Ok(all
            .iter()
            .filter_map(|f| {
                let port = f["port"].as_u64().and_then(|p| u16::try_from(p).ok())?;
                Some((f["stream_id"].as_u64()?, f["ip"].as_str().or(f["host"].as_str())?.to_string(), port))
            })
            .collect())
    }

    /// Destroys the room (its participants are dropped by Janus).
    pub async fn destroy(&self, room: u64) -> Result<(), CallError> {
        self.request(self.control, json!({"request": "destroy", "room": room})).await.map(|_| ())
    }
}

/// The name of the `n`th group of a room (from 1).
pub fn group(n: u32) -> String {
    format!("g{n}")
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Result<Value, CallError> {
    let what = body["janus"].as_str().unwrap_or("request").to_string();
    let r = http.post(url).json(&body).send().await.map_err(|e| err(&what, e))?;
    let v: Value = r.json().await.map_err(|e| err(&what, e))?;
    match v["janus"].as_str() {
        Some("error") => Err(err(&what, v["error"]["reason"].as_str().unwrap_or("refused"))),
        _ => Ok(v),
    }
}

/// The AudioBridge answer in a Janus message, or its error.
fn plugin_data(what: &str, v: &Value) -> Result<Value, CallError> {
    let d = &v["plugindata"]["data"];
    if let Some(e) = d["error"].as_str() {
        return Err(err(what, format!("{e} ({})", d["error_code"])));
    }
    if d.is_null() {
        return Err(err(what, format!("no plugin answer in {v}")));
    }
    Ok(d.clone())
}
