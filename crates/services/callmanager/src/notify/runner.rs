//! The notifications of one activity: created by the API, taken over from the
//! coordinator when this instance becomes active, one task per number acting on
//! [`super::decide::next`]. Every change is written fenced before it is shown, and an
//! attempt is written before its INVITE leaves: a fenced-out instance (a newer epoch)
//! can no longer start a call.

use super::decide::{self, Next, Rules};
use super::{attempt, media, Attempt, Message, Notice, Outcome};
use crate::call::Engine;
use crate::error::CallError;
use crate::lock;
use crate::metrics::{Metrics, OutcomeLabel};
use mware_coord::now_ms;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a finished notification stays (in the API and the coordinator).
pub const KEEP_DONE: Duration = Duration::from_secs(24 * 3600);

struct Entry {
    notice: Notice,
    /// Fired by `DELETE`.
    cancel: CancellationToken,
    /// One change of this notification at a time: read, change, write fenced, show.
    writing: Arc<tokio::sync::Mutex<()>>,
    /// When it became final (for the sweep).
    done_at: Option<u64>,
}

/// The notifications of an activity.
pub struct Notices {
    eng: Arc<Engine>,
    metrics: Metrics,
    items: Mutex<HashMap<String, Entry>>,
}

fn rules(n: &Notice) -> Rules {
    Rules { attempts: n.attempts, retry_after_ms: u64::from(n.retry_after_s) * 1000, window: n.window, confirm: n.confirm_digit.is_some() }
}

/// The message of `n` as µ-law.
pub async fn render(m: &Message) -> Result<Vec<u8>, String> {
    match m {
        Message::Text(t) => media::speak(t).await,
        Message::Audio(p) => media::load_wav(p).await,
    }
}

impl Notices {
    /// The notifications of this activity: the previous instance's taken over (an
    /// attempt it left running is recorded `interrupted`; an answered one is hung up).
    pub async fn start(eng: Arc<Engine>, metrics: Metrics) -> Result<Arc<Notices>, CallError> {
        let (saved, bad): (Vec<Notice>, _) = eng.store.load_notices().await?;
        for k in bad {
            tracing::warn!(key = k, "unreadable saved notification; left as it is");
        }
        let me = Arc::new(Notices { eng, metrics, items: Mutex::new(HashMap::new()) });
        for mut n in saved {
            let now = now_ms();
            let mut hang_up = vec![];
            for num in n.numbers.iter_mut() {
                if let Some(a) = decide::interrupt(num, now, u64::from(n.retry_after_s) * 1000) {
                    tracing::warn!(notification = %n.id, to = %num.to, attempt = a.index, "attempt interrupted by a failover");
                    me.metrics.notice_attempts.get_or_create(&OutcomeLabel { outcome: "interrupted".into() }).inc();
                    hang_up.extend(a.dialog);
                }
            }
            n.instance = me.eng.instance.clone();
            let running = n.state == "running";
            if running {
                me.eng.store.put_notice(&n.id, &n).await?;
            }
            for mut d in hang_up {
                let ua = me.eng.ua.clone();
                tokio::spawn(async move {
                    let _ = ua.bye(&mut d, "the notification attempt was interrupted by a failover").await;
                });
            }
            let id = n.id.clone();
            let done_at = (!running).then(now_ms);
            lock(&me.items).insert(id.clone(), Entry { notice: n, cancel: CancellationToken::new(), writing: Default::default(), done_at });
            if running {
                let me2 = me.clone();
                tokio::spawn(async move { me2.resume(id).await });
            }
        }
        Ok(me)
    }

    /// Renders the message again (it is not stored) and runs the numbers.
    async fn resume(self: Arc<Self>, id: String) {
        loop {
            let Ok(n) = self.get(&id) else { return };
            match render(&n.message).await {
                Ok(ulaw) => return self.run(id, Arc::new(ulaw)),
                Err(e) => tracing::warn!(notification = %id, error = %e, "message not rendered after the takeover; again in 30 s"),
            }
            tokio::select! {
                _ = self.eng.cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    }

    /// Writes a new notification (fenced) and starts calling.
    pub async fn create(self: &Arc<Self>, n: Notice, ulaw: Vec<u8>) -> Result<Notice, CallError> {
        self.eng.store.put_notice(&n.id, &n).await?;
        self.metrics.notices.inc();
        let id = n.id.clone();
        let entry = Entry { notice: n.clone(), cancel: CancellationToken::new(), writing: Default::default(), done_at: None };
        lock(&self.items).insert(id.clone(), entry);
        self.run(id, Arc::new(ulaw));
        Ok(n)
    }

    fn run(self: &Arc<Self>, id: String, ulaw: Arc<Vec<u8>>) {
        let Ok(n) = self.get(&id) else { return };
        for i in 0..n.numbers.len() {
            let (me, id, ulaw) = (self.clone(), id.clone(), ulaw.clone());
            tokio::spawn(async move {
                let stop = me.eng.cancel.clone();
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = me.number(&id, i, &ulaw) => {}
                }
            });
        }
    }

    /// Runs number `i` of `id` until it is final.
    async fn number(self: &Arc<Self>, id: &str, i: usize, ulaw: &[u8]) {
        loop {
            let Ok(n) = self.get(id) else { return };
            let cancel = self.cancel_of(id);
            let num = &n.numbers[i];
            match decide::next(num, &rules(&n), now_ms()) {
                Next::Idle => return,
                Next::Wait { until_ms } => {
                    let pause = Duration::from_millis(until_ms.saturating_sub(now_ms()));
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
                Next::Final { state, why } => {
                    tracing::info!(notification = %id, to = %num.to, state, why = %why, "number done");
                    let _ = self
                        .update(id, |n| {
                            n.numbers[i].state = state.into();
                        })
                        .await;
                    return;
                }
                Next::Call { index } => {
                    if cancel.is_cancelled() {
                        return;
                    }
                    if !self.call(id, i, index, &n, ulaw, &cancel).await {
                        // Not written (fenced out, or the coordinator failed): no INVITE.
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        }
                    }
                }
            }
        }
    }

    /// One attempt: written, placed, its end written. False when the first write failed.
    async fn call(self: &Arc<Self>, id: &str, i: usize, index: u32, n: &Notice, ulaw: &[u8], cancel: &CancellationToken) -> bool {
        let to = n.numbers[i].to.clone();
        let call_id = format!("n{:016x}@mware", rand::random::<u64>());
        let a = Attempt {
            index,
            instance: self.eng.instance.clone(),
            start_ms: now_ms(),
            end_ms: None,
            outcome: None,
            code: None,
            reason: None,
            call_id: call_id.clone(),
            answered_ms: None,
            played_ms: 0,
            answer_to_audio_ms: None,
            dialog: None,
        };
        let wrote = self
            .update(id, |n| {
                n.numbers[i].attempts.push(a.clone());
                n.numbers[i].state = "calling".into();
            })
            .await;
        if let Err(e) = wrote {
            tracing::warn!(notification = %id, to = %to, error = %e, "attempt not written: not called");
            return false;
        }
        tracing::info!(notification = %id, to = %to, attempt = index, "calling");
        let plan = attempt::Plan {
            to: &to,
            domain: &n.domain,
            caller_id: n.caller_id.as_deref(),
            answer_timeout: Duration::from_secs(n.answer_timeout_s.into()),
            ulaw,
            confirm: n.confirm_digit,
            call_id,
        };
        let me = self.clone();
        let idc = id.to_string();
        let on_answer = move |d: crate::ua::record::DialogRecord| {
            // Written without holding up the audio: the next instance hangs it up.
            tokio::spawn(async move {
                let at = now_ms();
                let _ = me
                    .update(&idc, |n| {
                        if let Some(a) = n.numbers[i].attempts.last_mut().filter(|a| a.index == index && a.end_ms.is_none()) {
                            a.answered_ms = Some(at);
                            a.dialog = Some(d);
                        }
                    })
                    .await;
            });
        };
        let e = attempt::place(&self.eng.ua, plan, on_answer, cancel).await;
        self.metrics.notice_attempts.get_or_create(&OutcomeLabel { outcome: e.outcome.as_str().into() }).inc();
        if let Some(t) = e.answer_to_audio {
            self.metrics.notice_answer_to_audio_seconds.observe(t.as_secs_f64());
        }
        tracing::info!(notification = %id, to = %to, attempt = index, outcome = e.outcome.as_str(), reason = %e.reason, "attempt ended");
        let end = now_ms();
        let _ = self
            .update(id, |n| {
                let retry = u64::from(n.retry_after_s) * 1000;
                let num = &mut n.numbers[i];
                if let Some(a) = num.attempts.iter_mut().find(|a| a.index == index) {
                    a.end_ms = Some(end);
                    a.outcome = Some(e.outcome);
                    a.code = e.code;
                    a.reason = Some(e.reason.clone());
                    a.played_ms = e.played_ms;
                    a.answer_to_audio_ms = e.answer_to_audio.map(|t| t.as_millis() as u64);
                    a.dialog = None;
                }
                num.state = if e.outcome == Outcome::Cancelled { "cancelled".into() } else { "pending".into() };
                num.next_ms = end + retry;
            })
            .await;
        true
    }

    fn cancel_of(&self, id: &str) -> CancellationToken {
        lock(&self.items).get(id).map(|e| e.cancel.clone()).unwrap_or_default()
    }

    /// Cancels a notification: ringing calls are cancelled, playing ones hung up, nothing
    /// more is called.
    pub async fn cancel(&self, id: &str) -> Result<Notice, CallError> {
        let n = self.get(id)?;
        if n.state != "running" {
            return Err(CallError::Conflict(format!("notification {id} is {}, not running", n.state)));
        }
        self.cancel_of(id).cancel();
        self.update(id, |n| {
            n.state = "cancelled".into();
            for num in n.numbers.iter_mut().filter(|x| !x.is_final() && x.state != "calling") {
                num.state = "cancelled".into();
            }
        })
        .await?;
        self.get(id)
    }

    /// One notification.
    pub fn get(&self, id: &str) -> Result<Notice, CallError> {
        lock(&self.items).get(id).map(|e| e.notice.clone()).ok_or_else(|| CallError::NotFound(format!("no notification {id}")))
    }

    /// Every notification (of `domain`), newest first.
    pub fn list(&self, domain: Option<&str>) -> Vec<Notice> {
        let mut v: Vec<Notice> =
            lock(&self.items).values().map(|e| e.notice.clone()).filter(|n| domain.is_none_or(|d| n.domain == d)).collect();
        v.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
        v
    }

    /// Numbers not yet final, over every notification.
    pub fn open_numbers(&self) -> usize {
        lock(&self.items).values().flat_map(|e| e.notice.numbers.iter()).filter(|x| !x.is_final()).count()
    }

    /// Forgets notifications finished more than [`KEEP_DONE`] ago (here and in the
    /// coordinator); sets the open-numbers gauge.
    pub async fn sweep(&self) {
        let now = now_ms();
        let old: Vec<String> = lock(&self.items)
            .iter()
            .filter(|(_, e)| e.done_at.is_some_and(|t| now.saturating_sub(t) > KEEP_DONE.as_millis() as u64))
            .map(|(k, _)| k.clone())
            .collect();
        for id in old {
            if self.eng.store.delete_notice(&id).await.is_ok() {
                lock(&self.items).remove(&id);
            }
        }
        self.metrics.notice_numbers_open.set(self.open_numbers() as i64);
    }

    /// Changes a notification and writes it, fenced, before the change is shown.
    async fn update(&self, id: &str, f: impl FnOnce(&mut Notice)) -> Result<(), CallError> {
        let writing =
            lock(&self.items).get(id).map(|e| e.writing.clone()).ok_or_else(|| CallError::NotFound(format!("no notification {id}")))?;
        let _one = writing.lock().await;
        let mut n = self.get(id)?;
        f(&mut n);
        if n.state == "running" && n.numbers.iter().all(|x| x.is_final()) {
            n.state = "done".into();
        }
        self.eng.store.put_notice(id, &n).await?;
        if let Some(e) = lock(&self.items).get_mut(id) {
            if n.state != "running" && e.done_at.is_none() {
                e.done_at = Some(now_ms());
            }
            e.notice = n;
        }
        Ok(())
    }
}
