//! The conferences of one activity: rooms in the Janus mixer, each participant a call
//! that mware placed ([`crate::conference`]). Every change of a room is written, fenced,
//! to the group's coordinator (`store::CONF_PREFIX`) with what the next active instance
//! needs to go on: the mixer session and handles, each participant's dialog. The next
//! instance keeps the same Janus session alive (its REST transport binds a session to no
//! connection), lists the rooms, and can add, mute and remove participants; the phones'
//! audio never passed through mware, so it goes on through the failover.
//!
//! Who is talking ([`crate::talk`], [`crate::talkers`]; the Janus side in
//! `rooms/talking.rs`): a room has AudioBridge groups, each forwarded to the active
//! instance. Nothing of it is stored: the next active instance stops every forwarder of
//! a room that does not point at itself, makes its own, and places the participants in
//! the groups afresh.

use crate::call::Engine;
use crate::conference::{self, Participant};
use crate::error::CallError;
use crate::lock;
use crate::mixer::{self, Mixer};
use crate::talkers::{Talkers, Talking};
use crate::ua::InDialog;
use mware_coord::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

mod talking;

/// A participant (as stored; [`MemberView`] is what the API shows).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    /// Its id in the conference.
    pub pid: String,
    /// Who was called.
    pub party: String,
    /// `dialing`, `joined`, `failed` or `left`.
    pub state: String,
    /// Muted by the operator.
    pub muted: bool,
    /// Since when in this state, ms since the Unix epoch.
    pub since_ms: u64,
    /// Why it failed or left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its call and place in the room.
    #[serde(default)]
    pub call: Option<Participant>,
}

/// A conference (as stored; [`RoomView`] is what the API shows).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Room {
    /// Its id (`<group>-c<hex>`).
    pub id: String,
    /// The domain it belongs to.
    pub domain: String,
    /// A name given by the client.
    pub name: String,
    /// Most participants at once.
    pub max_participants: u32,
    /// When it was created, ms since the Unix epoch.
    pub created_ms: u64,
    /// The instance running it now.
    pub instance: String,
    /// Participants by id.
    pub participants: BTreeMap<String, Member>,
    /// The Janus room, session and control handle.
    pub mixer: MixerIds,
    /// The recording of the room's mix, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<Recording>,
    /// AudioBridge groups the room was made with ([`crate::talk::GROUPS`]; 0 in a room
    /// made before rooms had groups, whose participants show no `talking`).
    #[serde(default)]
    pub groups: u32,
}

/// Where the mixer records a conference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recording {
    /// The WAV file of the room's mix, on the mixer's host (`<sip.recordings_dir>/<id>.wav`):
    /// 8 kHz mono 16-bit PCM, written while the room has participants, complete once the
    /// conference is deleted.
    pub file: String,
}

/// Where a room lives in Janus.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct MixerIds {
    /// The AudioBridge room number.
    pub room: u64,
    /// The Janus session.
    pub session: u64,
    /// Its control handle.
    pub control: u64,
}

/// A participant as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    /// Its id in the conference.
    pub pid: String,
    /// Who was called.
    pub party: String,
    /// `dialing`, `joined`, `failed` or `left`.
    pub state: String,
    /// Muted by the operator.
    pub muted: bool,
    /// Since when in this state, ms since the Unix epoch.
    pub since_ms: u64,
    /// Why it failed or left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Talking now: the level of its audio in the room over the last 200 ms was −40 dBov
    /// or louder (it stops at quieter than −45 dBov). A muted participant is silent.
    /// Absent while not known: not joined yet, just after a failover, or (in a room of
    /// more than 5) while mware is finding which of several participants is talking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talking: Option<bool>,
    /// Since when it has been talking (or silent), ms since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talking_since_ms: Option<u64>,
}

/// A conference as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoomView {
    /// Its id (`<group>-c<hex>`).
    pub id: String,
    /// The domain it belongs to.
    pub domain: String,
    /// Its name.
    pub name: String,
    /// Most participants at once.
    pub max_participants: u32,
    /// When it was created, ms since the Unix epoch.
    pub created_ms: u64,
    /// The instance running it now.
    pub instance: String,
    /// How many participants are in the room now (state `joined`).
    pub joined: usize,
    /// Its participants (those that left or failed too).
    pub participants: Vec<MemberView>,
    /// The recording of its mix (absent: not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<Recording>,
}

impl Member {
    /// What the API shows, with what is known of its voice.
    pub fn view(&self, talk: Option<Talking>) -> MemberView {
        MemberView {
            pid: self.pid.clone(),
            party: self.party.clone(),
            state: self.state.clone(),
            muted: self.muted,
            since_ms: self.since_ms,
            reason: self.reason.clone(),
            talking: talk.filter(|_| self.state == "joined").map(|t| t.talking),
            talking_since_ms: talk.filter(|_| self.state == "joined").map(|t| t.since_ms),
        }
    }
}

impl Room {
    /// What the API shows; `talk` says what is known of a participant's voice.
    pub fn view(&self, talk: impl Fn(&str) -> Option<Talking>) -> RoomView {
        RoomView {
            id: self.id.clone(),
            domain: self.domain.clone(),
            name: self.name.clone(),
            max_participants: self.max_participants,
            created_ms: self.created_ms,
            instance: self.instance.clone(),
            joined: self.participants.values().filter(|m| m.state == "joined").count(),
            participants: self.participants.values().map(|m| m.view(talk(&m.pid))).collect(),
            recording: self.recording.clone(),
        }
    }
}

/// The rooms of an activity.
pub struct Rooms {
    pub(crate) eng: Arc<Engine>,
    pub(crate) mixer: Arc<Mixer>,
    rooms: Mutex<HashMap<String, Room>>,
    group: u32,
    /// One change of a room at a time: read, change, write fenced, then show.
    writing: tokio::sync::Mutex<()>,
    pub(crate) talkers: Arc<Talkers>,
}

impl Rooms {
    /// The conferences of this activity, on the mixer at `url`: the previous instance's,
    /// taken over from the coordinator (its Janus session kept), or none.
    pub async fn start(eng: Arc<Engine>, url: &str, group: u32) -> Result<Arc<Rooms>, CallError> {
        let saved: Vec<Room> = eng.store.load_conferences().await?;
        let mixer = match saved.iter().map(|r| r.mixer).find(|m| m.session != 0) {
            Some(ids) => Mixer::resume(url, ids.session, ids.control)?,
            None => Mixer::connect(url).await?,
        };
        let ip = talking::reachable_from(url).await?;
        let talkers =
            Talkers::start(ip, eng.cancel.clone()).await.map_err(|e| CallError::Sip(format!("talk detection socket on {ip}: {e}")))?;
        let rooms =
            Arc::new(Rooms { eng, mixer: Arc::new(mixer), rooms: Mutex::new(HashMap::new()), group, writing: Default::default(), talkers });
        let taken_over: Vec<String> = saved.iter().filter(|r| r.groups > 0).map(|r| r.id.clone()).collect();
        for mut r in saved {
            r.instance = rooms.eng.instance.clone();
            for m in r.participants.values() {
                if let Some(p) = &m.call {
                    rooms.watch(&r.id, &m.pid, p);
                }
            }
            lock(&rooms.rooms).insert(r.id.clone(), r);
        }
        let keep = rooms.clone();
        tokio::spawn(async move { keep.keepalive().await });
        let me = rooms.clone();
        tokio::spawn(async move {
            for id in &taken_over {
                me.retarget(id).await;
            }
            me.find_talkers().await;
        });
        Ok(rooms)
    }

    /// What the API shows of a room, with who is talking.
    pub fn view(&self, r: &Room) -> RoomView {
        r.view(|pid| self.talkers.get(&r.id, pid))
    }

    /// What the API shows of a participant of room `id`.
    pub fn member_view(&self, id: &str, m: &Member) -> MemberView {
        m.view(self.talkers.get(id, &m.pid))
    }

    /// Keeps the Janus session alive while the activity lasts.
    async fn keepalive(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(20));
        loop {
            tokio::select! {
                _ = self.eng.cancel.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = self.mixer.keepalive().await {
                        tracing::warn!(error = %e, "the mixer session could not be kept alive");
                    }
                }
            }
        }
    }

    /// Every room (of `domain`), newest first.
    pub fn list(&self, domain: Option<&str>) -> Vec<Room> {
        let mut v: Vec<Room> = lock(&self.rooms).values().filter(|r| domain.is_none_or(|d| r.domain == d)).cloned().collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.created_ms));
        v
    }

    /// One room.
    pub fn get(&self, id: &str) -> Result<Room, CallError> {
        lock(&self.rooms).get(id).cloned().ok_or_else(|| CallError::NotFound(format!("no conference {id}")))
    }

    /// Creates a room; recorded as `<record_dir>/<id>.wav` when `record_dir` is given.
    pub async fn create(&self, domain: String, name: String, max_participants: u32, record_dir: Option<&str>) -> Result<Room, CallError> {
        let number = rand::random::<u32>() as u64 + 1;
        let id = format!("{}-c{:012x}", self.group, rand::random::<u64>() >> 16);
        let file = format!("{id}.wav");
        let groups = crate::talk::GROUPS as u32;
        self.mixer.create_recorded_room(number, &name, groups, record_dir.map(|d| (d, file.as_str()))).await?;
        let ids = MixerIds { room: number, session: self.mixer.session(), control: self.mixer.control() };
        let recording = record_dir.map(|d| Recording { file: format!("{}/{file}", d.trim_end_matches('/')) });
        let room = Room {
            id,
            domain,
            name,
            max_participants,
            created_ms: now_ms(),
            instance: self.eng.instance.clone(),
            participants: BTreeMap::new(),
            mixer: ids,
            recording,
            groups,
        };
        self.save(&room).await?;
        lock(&self.rooms).insert(room.id.clone(), room.clone());
        self.open_talk(&room).await;
        Ok(room)
    }

    /// Hangs everyone up and destroys the room.
    pub async fn destroy(&self, id: &str) -> Result<(), CallError> {
        let room = self.get(id)?;
        for m in room.participants.values() {
            if let Some(mut p) = m.call.clone() {
                let _ = self.eng.ua.bye(&mut p.dialog, "the conference ended").await;
            }
        }
        self.mixer.destroy(room.mixer.room).await?;
        self.talkers.close(id);
        lock(&self.rooms).remove(id);
        self.eng.store.delete_conference(id).await
    }

    /// Dials `to` into the room; the participant's id at once, its state as it goes.
    pub async fn add(self: &Arc<Self>, id: &str, to: String) -> Result<Member, CallError> {
        let room = self.get(id)?;
        let live = room.participants.values().filter(|m| m.state == "dialing" || m.state == "joined").count();
        if live >= room.max_participants as usize {
            return Err(CallError::Limited { msg: format!("{live} participants: max_participants reached"), retry_after_s: 10 });
        }
        let pid = format!("p{:08x}", rand::random::<u32>());
        // Every participant joins in the last group; `find_talkers` spreads them.
        let group = (room.groups > 0).then(|| mixer::group(room.groups));
        let m = Member {
            pid: pid.clone(),
            party: to.clone(),
            state: "dialing".into(),
            muted: false,
            since_ms: now_ms(),
            reason: None,
            call: None,
        };
        self.update(id, |r| {
            r.participants.insert(pid.clone(), m.clone());
        })
        .await?;
        let me = self.clone();
        let (id, domain, number) = (id.to_string(), room.domain.clone(), room.mixer.room);
        tokio::spawn(async move {
            let outcome = conference::dial(&me.eng.ua, &me.mixer, number, &domain, &to, group.as_deref()).await;
            let _ = me
                .update(&id, |r| {
                    if let Some(m) = r.participants.get_mut(&pid) {
                        m.since_ms = now_ms();
                        match &outcome {
                            Ok(p) => {
                                m.state = "joined".into();
                                m.call = Some(p.clone());
                            }
                            Err(e) => {
                                m.state = "failed".into();
                                m.reason = Some(e.to_string());
                            }
                        }
                    }
                })
                .await;
            if let Ok(p) = &outcome {
                me.watch(&id, &pid, p);
                me.talkers.join(&id, &pid);
            }
        });
        Ok(m)
    }

    /// Mutes or unmutes a participant.
    pub async fn mute(&self, id: &str, pid: &str, muted: bool) -> Result<Member, CallError> {
        let room = self.get(id)?;
        let call = joined(&room, pid)?;
        self.mixer.mute(room.mixer.room, call.joined.id, muted).await?;
        self.update(id, |r| {
            if let Some(m) = r.participants.get_mut(pid) {
                m.muted = muted;
            }
        })
        .await?;
        Ok(self.get(id)?.participants[pid].clone())
    }

    /// Ends a participant's call and takes it out of the room.
    pub async fn remove(&self, id: &str, pid: &str, why: &str) -> Result<Member, CallError> {
        let room = self.get(id)?;
        let mut call = joined(&room, pid)?;
        self.talkers.leave(id, pid);
        conference::remove(&self.eng.ua, &self.mixer, room.mixer.room, &mut call).await?;
        self.left(id, pid, why).await?;
        Ok(self.get(id)?.participants[pid].clone())
    }

    async fn left(&self, id: &str, pid: &str, why: &str) -> Result<(), CallError> {
        self.update(id, |r| {
            if let Some(m) = r.participants.get_mut(pid) {
                m.state = "left".into();
                m.reason = Some(why.to_string());
                m.since_ms = now_ms();
                m.call = None; // the dialog is over: nothing is sent in it any more
            }
        })
        .await
    }

    /// Hands the phone's BYE to the room: the participant leaves it. The watch ends with
    /// the activity: it holds the user agent, whose socket the next activity (here or on
    /// another member on the same address) must be able to bind.
    fn watch(self: &Arc<Self>, id: &str, pid: &str, p: &Participant) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.eng.ua.watch(&p.dialog.call_id, conference::answer_for(&p.joined).into_bytes(), tx);
        let (me, id, pid, joined) = (self.clone(), id.to_string(), pid.to_string(), p.joined.clone());
        let cancel = self.eng.cancel.clone();
        tokio::spawn(async move {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                e = rx.recv() => e,
            };
            if let Some(InDialog::Bye) = event {
                me.talkers.leave(&id, &pid);
                if let Ok(room) = me.get(&id) {
                    let _ = me.mixer.kick(room.mixer.room, &joined).await;
                }
                let _ = me.left(&id, &pid, "hung up by the phone").await;
            }
        });
    }

    /// Changes a room and writes it, fenced, before the change is shown.
    async fn update(&self, id: &str, f: impl FnOnce(&mut Room)) -> Result<(), CallError> {
        let _one = self.writing.lock().await;
        let mut room = self.get(id)?;
        f(&mut room);
        self.save(&room).await?;
        lock(&self.rooms).insert(id.to_string(), room);
        Ok(())
    }

    async fn save(&self, room: &Room) -> Result<(), CallError> {
        self.eng.store.put_conference(&room.id, room).await
    }
}

/// The call of a joined participant.
fn joined(room: &Room, pid: &str) -> Result<Participant, CallError> {
    let m = room.participants.get(pid).ok_or_else(|| CallError::NotFound(format!("no participant {pid} in conference {}", room.id)))?;
    m.call.clone().ok_or_else(|| CallError::Conflict(format!("participant {pid} is {}, not joined", m.state)))
}
