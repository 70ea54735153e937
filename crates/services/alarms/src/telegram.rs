//! The Telegram bot: alarms to the allowed chats (formatted for people: what, where,
//! since when, why; a burst goes out as one message of up to 20 alarms), and the
//! commands `/status`, `/groups`, `/alarms` and `/ack ID` from allowed chats only
//! (other chats get nothing). Updates are long-polled (`getUpdates`) by the active
//! instance only; the next offset is written to the group's store (fenced) before a
//! command is answered, so a failover neither answers twice nor loses the offset.
//! The token (from the variable `token_env`) is part of every URL, so no URL is ever
//! logged: errors are reported without it.

use crate::alarm::{Alarm, TG_OFFSET};
use crate::channel::{SendError, Sink};
use crate::section::Telegram;
use crate::store::{Cmd, Shared};
use backon::{BackoffBuilder, ExponentialBuilder};
use mware_config::Site;
use mware_coord::{CoordError, Coordinator, Fence, KvOp};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Pauses between failed polls of the bot's commands (unless Telegram says how long to
/// wait): from 500 ms doubling to 15 s, each lengthened by a random share of itself: at most
/// [`POLL_RETRY_MAX`].
const POLL_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(500))
    .with_max_delay(Duration::from_secs(15))
    .with_jitter()
    .without_max_times();
/// The longest pause between failed polls.
const POLL_RETRY_MAX: Duration = Duration::from_secs(30);

/// The Bot API client.
#[derive(Clone)]
pub struct Bot {
    http: reqwest::Client,
    base: String,
    token: String,
    chats: Vec<i64>,
}

impl Bot {
    /// The bot, with its token read from `token_env`; `Err` names the variable.
    pub fn new(cfg: &Telegram) -> Result<Self, String> {
        let token = std::env::var(&cfg.token_env).map_err(|_| format!("the variable {} (telegram.token_env) is not set", cfg.token_env))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.poll_timeout_s + 15))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Bot { http, base: cfg.api_base.trim_end_matches('/').to_string(), token, chats: cfg.chat_ids.clone() })
    }

    /// Calls a Bot API method; `Err` carries `retry_after` on 429.
    async fn call(&self, method: &str, body: Value) -> Result<Value, SendError> {
        let url = format!("{}/bot{}/{method}", self.base, self.token);
        let r = self.http.post(url).json(&body).send().await.map_err(|e| SendError::other(format!("{method}: {}", e.without_url())))?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status.as_u16() == 429 {
            let secs = v["parameters"]["retry_after"].as_u64().unwrap_or(5);
            return Err(SendError { reason: format!("{method}: 429 too many requests"), retry_after: Some(Duration::from_secs(secs)) });
        }
        if !status.is_success() || v["ok"] != json!(true) {
            let d = v["description"].as_str().unwrap_or("no description");
            return Err(SendError::other(format!("{method}: {status}: {d}")));
        }
        Ok(v["result"].clone())
    }

    async fn say(&self, chat: i64, text: &str) -> Result<(), SendError> {
        self.call("sendMessage", json!({"chat_id": chat, "text": text, "disable_web_page_preview": true})).await.map(|_| ())
    }
}

/// An alarm for people.
pub fn format(a: &Alarm) -> String {
    let since = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(a.at_ms));
    let app = if a.app.is_empty() { String::new() } else { format!("/{}", a.app) };
    let more = if a.count > 1 { format!(" ({} messages)", a.count) } else { String::new() };
    format!(
        "{} {} · {}{more}\nwhere: {}{app} (site {}, group {})\nsince: {since}\nwhy: {}\nid {}",
        if a.open { "ALARM" } else { "INFO" },
        a.severity.to_uppercase(),
        a.rule,
        a.host,
        a.site,
        a.group,
        a.message,
        a.id
    )
}

/// The alarm channel.
pub struct Channel(pub Bot);

#[async_trait::async_trait]
impl Sink for Channel {
    fn name(&self) -> String {
        "telegram".into()
    }
    fn batch(&self) -> usize {
        20
    }
    async fn send(&mut self, batch: &[Arc<Alarm>]) -> Result<usize, SendError> {
        let mut text = String::new();
        let mut n = 0;
        for a in batch {
            let one = format(a);
            if n > 0 && text.len() + one.len() > 3500 {
                break;
            }
            if n > 0 {
                text.push_str("\n\n");
            }
            text.push_str(&one);
            n += 1;
        }
        for chat in &self.0.chats {
            self.0.say(*chat, &text).await?;
        }
        Ok(n)
    }
}

/// What the command loop needs.
pub struct Commands {
    /// The bot.
    pub bot: Bot,
    /// The coordinator.
    pub coord: Arc<dyn Coordinator>,
    /// This activity's fence.
    pub fence: Fence,
    /// The site.
    pub site: watch::Receiver<Arc<Site>>,
    /// The log.
    pub shared: Arc<Shared>,
    /// The writer (acks).
    pub writer: mpsc::Sender<Cmd>,
    /// Long poll timeout.
    pub poll_s: u64,
}

impl Commands {
    /// Polls and answers until `cancel`; `Err` when the offset write is refused (this
    /// instance is no longer active).
    pub async fn run(self, cancel: CancellationToken) -> Result<(), CoordError> {
        let mut offset: i64 = match self.coord.kv_get(self.fence.group, TG_OFFSET).await? {
            Some(v) => String::from_utf8_lossy(&v.value).parse().unwrap_or(0),
            None => 0,
        };
        let mut pauses = POLL_RETRY.build();
        loop {
            let body = json!({"offset": offset, "timeout": self.poll_s, "allowed_updates": ["message"]});
            let r = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                r = self.bot.call("getUpdates", body) => r,
            };
            let updates = match r {
                Ok(u) => u.as_array().cloned().unwrap_or_default(),
                Err(e) => {
                    let wait = e.retry_after.unwrap_or_else(|| pauses.next().unwrap_or(POLL_RETRY_MAX));
                    tracing::warn!(reason = %e.reason, "alarms: telegram getUpdates failed; polling again later");
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
            };
            pauses = POLL_RETRY.build();
            for u in updates {
                let Some(id) = u["update_id"].as_i64() else { continue };
                if id < offset {
                    continue;
                }
                offset = id + 1;
                // The offset is durable before the answer: never answered twice.
                let put = vec![KvOp::Put { key: TG_OFFSET.into(), value: offset.to_string().into_bytes() }];
                if !mware_coord::kv_apply_retrying(self.coord.as_ref(), &self.fence, put, &cancel, "telegram offset").await? {
                    return Ok(());
                }
                let chat = u["message"]["chat"]["id"].as_i64();
                let text = u["message"]["text"].as_str().unwrap_or_default();
                let Some(chat) = chat.filter(|c| self.bot.chats.contains(c)) else {
                    tracing::info!("alarms: telegram message from a chat not in chat_ids ignored");
                    continue;
                };
                if let Some(answer) = self.answer(chat, text).await {
                    if let Err(e) = self.bot.say(chat, &answer).await {
                        tracing::warn!(reason = %e.reason, "alarms: cannot answer a telegram command");
                    }
                }
            }
        }
    }

    async fn answer(&self, chat: i64, text: &str) -> Option<String> {
        let mut words = text.split_whitespace();
        let cmd = words.next()?.split('@').next()?;
        Some(match cmd {
            "/status" => {
                let site = self.site.borrow().clone();
                match mware_host::site::read(self.coord.as_ref(), &site).await {
                    Ok(v) => {
                        let mut s = format!("site {}: {}\n{}", v.site, v.state.as_str(), v.summary);
                        for i in v.items.iter().filter(|i| i.state.as_str() != "ok").take(15) {
                            s.push_str(&format!("\n- group {} {}/{}: {} ({})", i.group, i.kind, i.name, i.state.as_str(), i.reason));
                        }
                        s
                    }
                    Err(e) => format!("cannot read the site's state: {e}"),
                }
            }
            "/groups" => match self.coord.cluster().await {
                Ok(groups) => groups
                    .iter()
                    .map(|g| {
                        let live: Vec<&str> = g.members.iter().filter(|m| m.live).map(|m| m.info.instance.as_str()).collect();
                        match &g.leader {
                            Some(l) => format!("group {}: active {} (epoch {}); live {}", g.group, l.instance, l.epoch, live.join(", ")),
                            None => format!("group {}: NO ACTIVE INSTANCE; live {}", g.group, live.join(", ")),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                Err(e) => format!("cannot read the groups: {e}"),
            },
            "/alarms" => {
                let (total, newest) = {
                    let log = self.shared.log.lock().unwrap_or_else(|e| e.into_inner());
                    (log.open_count(), log.open_newest(20))
                };
                if total == 0 {
                    "no open alarm".into()
                } else {
                    let mut s = format!("{total} open alarm(s):");
                    for a in &newest {
                        s.push_str(&format!("\n{} {}", a.id, a.line()));
                    }
                    s
                }
            }
            "/ack" => {
                let Some(id) = words.next() else { return Some("usage: /ack ID".into()) };
                let (tx, rx) = oneshot::channel();
                if self.writer.send(Cmd::Ack { id: id.to_string(), by: format!("telegram:{chat}"), reply: tx }).await.is_err() {
                    return Some("cannot acknowledge now: the service is stopping".into());
                }
                match rx.await {
                    Ok(Some(a)) => format!("acknowledged {}: {}", a.id, a.line()),
                    _ => format!("no alarm {id}"),
                }
            }
            _ => "commands: /status, /groups, /alarms, /ack ID".into(),
        })
    }
}
