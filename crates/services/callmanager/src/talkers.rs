//! Who is talking in a conference: the acting part. One UDP socket of the active
//! instance hears every room's group forwarders (each with an SSRC of its own), feeds
//! each group's [`Detector`], and from a group's loudness derives its members': a
//! participant alone in its group is talking when the group is loud; every member of a
//! quiet group is silent; the members of a loud shared group are not known until
//! [`crate::talk::plan`]'s moves single the talker out. The moves themselves (Janus
//! `configure` requests) are made by [`crate::rooms`].
//!
//! What the socket gets is a copy of the audio, 50 packets a second per group; the
//! phones' audio flows only between them and Janus.

use crate::lock;
use crate::talk::{self, Detector, GroupState, Move};
use mware_coord::now_ms;
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// What the API shows of a participant's voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Talking {
    /// Talking now.
    pub talking: bool,
    /// Since when (talking or silent), ms since the Unix epoch.
    pub since_ms: u64,
}

struct Group {
    detector: Detector,
    state: GroupState,
}

#[derive(Default)]
struct RoomTalk {
    groups: Vec<Group>,
    voices: HashMap<String, Option<Talking>>,
}

#[derive(Default)]
struct Inner {
    rooms: HashMap<String, RoomTalk>,
    by_ssrc: HashMap<u32, (String, usize)>,
}

/// The socket the active instance hears the forwarded audio on, and who is talking.
pub struct Talkers {
    addr: SocketAddr,
    inner: Mutex<Inner>,
}

impl Talkers {
    /// Binds a UDP port on `ip` (an address the mixer reaches this host on) and reads it
    /// until `cancel`.
    pub async fn start(ip: IpAddr, cancel: CancellationToken) -> std::io::Result<Arc<Talkers>> {
        let sock = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let t = Arc::new(Talkers { addr: sock.local_addr()?, inner: Default::default() });
        let me = t.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let n = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = sock.recv_from(&mut buf) => match r { Ok((n, _)) => n, Err(_) => continue },
                };
                me.packet(&buf[..n]);
                // Every forwarder of a room sends on the room's 20 ms tick: read what
                // else is queued before waiting again (one wake-up per tick).
                while let Ok((n, _)) = sock.try_recv_from(&mut buf) {
                    me.packet(&buf[..n]);
                }
            }
        });
        Ok(t)
    }

    /// Where the mixer must forward to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts (or restarts, empty) the talk state of room `id` with `groups` groups; the
    /// SSRC each group's forwarder must use.
    pub fn open(&self, id: &str, groups: usize) -> Vec<u32> {
        let mut all = lock(&self.inner);
        all.by_ssrc.retain(|_, (r, _)| r != id);
        let mut ssrcs = Vec::with_capacity(groups);
        for i in 0..groups {
            let mut ssrc = rand::random::<u32>();
            while all.by_ssrc.contains_key(&ssrc) {
                ssrc = rand::random();
            }
            all.by_ssrc.insert(ssrc, (id.to_string(), i));
            ssrcs.push(ssrc);
        }
        let groups = (0..groups).map(|_| Group { detector: Detector::default(), state: GroupState::default() }).collect();
        all.rooms.insert(id.to_string(), RoomTalk { groups, voices: HashMap::new() });
        ssrcs
    }

    /// Forgets room `id`.
    pub fn close(&self, id: &str) {
        let mut all = lock(&self.inner);
        all.rooms.remove(id);
        all.by_ssrc.retain(|_, (r, _)| r != id);
    }

    /// The rooms with talk detection.
    pub fn rooms(&self) -> Vec<String> {
        lock(&self.inner).rooms.keys().cloned().collect()
    }

    /// Participant `pid` of room `id` joined the mixer in the room's last group (as
    /// every participant does); `false` when the room has no talk detection. A
    /// participant already known stays where it is (a join seen both by the dial and by
    /// a takeover's placing).
    pub fn join(&self, id: &str, pid: &str) -> bool {
        let mut all = lock(&self.inner);
        let Some(room) = all.rooms.get_mut(id) else { return false };
        if room.voices.contains_key(pid) {
            return true;
        }
        let Some(g) = room.groups.last_mut() else { return false };
        g.state.members.push((pid.to_string(), 0));
        reset(g);
        room.voices.insert(pid.to_string(), None);
        true
    }

    /// Takes participant `pid` out of room `id`'s groups (it left, or did not join).
    pub fn leave(&self, id: &str, pid: &str) {
        let mut all = lock(&self.inner);
        if let Some(room) = all.rooms.get_mut(id) {
            for g in room.groups.iter_mut() {
                if let Some(at) = g.state.members.iter().position(|(p, _)| p == pid) {
                    g.state.members.remove(at);
                    reset(g);
                }
            }
            room.voices.remove(pid);
        }
    }

    /// The moves [`talk::plan`] asks for in room `id` now.
    pub fn plan(&self, id: &str) -> Vec<Move> {
        let all = lock(&self.inner);
        let Some(room) = all.rooms.get(id) else { return vec![] };
        let states: Vec<GroupState> = room.groups.iter().map(|g| g.state.clone()).collect();
        talk::plan(&states)
    }

    /// Records that the mixer made move `m` in room `id`: both groups start a new window.
    pub fn moved(&self, id: &str, m: &Move) {
        let mut all = lock(&self.inner);
        let Some(room) = all.rooms.get_mut(id) else { return };
        if m.from >= room.groups.len() || m.to >= room.groups.len() {
            return;
        }
        let Some(at) = room.groups[m.from].state.members.iter().position(|(p, _)| *p == m.pid) else { return };
        let (pid, alone) = room.groups[m.from].state.members.remove(at);
        reset(&mut room.groups[m.from]);
        let to = &mut room.groups[m.to];
        let alone = if to.state.members.is_empty() { now_ms() } else { alone };
        to.state.members.push((pid, alone));
        reset(to);
    }

    /// Whether `pid` of room `id` is talking; `None` while that is not known.
    pub fn get(&self, id: &str, pid: &str) -> Option<Talking> {
        lock(&self.inner).rooms.get(id).and_then(|r| r.voices.get(pid).copied().flatten())
    }

    fn packet(&self, p: &[u8]) {
        let Some((ssrc, payload)) = forwarded(p) else { return };
        let mut guard = lock(&self.inner);
        let all = &mut *guard;
        let Some((id, gi)) = all.by_ssrc.get(&ssrc) else { return };
        let Some(room) = all.rooms.get_mut(id) else { return };
        let Some(g) = room.groups.get_mut(*gi) else { return };
        let Some(loud) = g.detector.push(talk::level(payload)) else { return };
        let now = now_ms();
        if g.state.loud != Some(loud) {
            g.state.since_ms = now;
        }
        g.state.loud = Some(loud);
        let alone = g.state.members.len() == 1;
        for (pid, _) in &g.state.members {
            let was = room.voices.get(pid).copied().flatten();
            let now_is = match (alone, loud) {
                (true, t) | (false, t @ false) => Some(t),
                (false, true) => None, // one of them is talking: not known who yet
            };
            let since = |t: bool| was.filter(|w| w.talking == t).map_or(now, |w| w.since_ms);
            room.voices.insert(pid.clone(), now_is.map(|t| Talking { talking: t, since_ms: since(t) }));
        }
    }
}

/// The SSRC and payload of a packet of a Janus forwarder: a 12-byte RTP header, then
/// the PCMU. Only the version is checked: Janus 1.1.2's group forwarders send most
/// packets with the padding, extension and CSRC-count bits all set (first byte `0xbf`)
/// and yet a plain 12-byte header and 160 bytes of payload, which a strict RTP parser
/// (`rtp-rs`) refuses.
fn forwarded(p: &[u8]) -> Option<(u32, &[u8])> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    Some((u32::from_be_bytes([p[8], p[9], p[10], p[11]]), &p[12..]))
}

/// A group whose members changed starts a new window.
fn reset(g: &mut Group) {
    g.detector = Detector::default();
    g.state.loud = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::talk::WINDOW;

    fn loud() -> Vec<u8> {
        (0..160).map(|i| if (i / 10) % 2 == 0 { 0x80u8 } else { 0x00 }).collect()
    }

    async fn send(t: &Talkers, tx: &UdpSocket, ssrc: u32, payload: &[u8], n: usize) {
        for seq in 0..n as u16 {
            let p = rtp_rs::RtpPacketBuilder::new()
                .payload_type(0)
                .ssrc(ssrc)
                .sequence(rtp_rs::Seq::from(seq))
                .payload(payload)
                .build()
                .unwrap();
            tx.send_to(&p, t.addr()).await.unwrap();
        }
    }

    async fn until(what: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !what() {
            assert!(std::time::Instant::now() < deadline, "timed out");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn janus_s_forwarded_packets_are_read_despite_their_first_byte() {
        let mut p = vec![0xbf, 0x80, 0, 1, 0, 0, 0, 0xa0, 0x0e, 0x49, 0xc6, 0xbe];
        p.extend([0xffu8; 160]);
        assert!(rtp_rs::RtpReader::new(&p).is_err(), "what a strict parser says");
        assert_eq!(forwarded(&p), Some((0x0e49c6be, &p[12..])));
        assert_eq!(forwarded(&p[..11]), None);
        p[0] = 0x40;
        assert_eq!(forwarded(&p), None, "not RTP version 2");
    }

    #[tokio::test]
    async fn groups_decide_their_members_voices() {
        let cancel = CancellationToken::new();
        let t = Talkers::start("127.0.0.1".parse().unwrap(), cancel.clone()).await.unwrap();
        let ssrc = t.open("c1", 2);
        assert!(t.join("c1", "a") && t.join("c1", "b") && t.join("c1", "c"));
        assert!(t.join("c1", "c"), "known already: not added twice");
        assert!(!t.join("c9", "x"), "no such room");
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // Everyone joined the last group; once its window is full, the empty first group
        // takes the one of them alone longest ago (never alone: a, by name).
        send(&t, &tx, ssrc[1], &[0xff; 160], WINDOW).await;
        until(|| t.get("c1", "a").is_some()).await;
        let plan = t.plan("c1");
        assert_eq!(plan, vec![Move { pid: "a".into(), from: 1, to: 0 }]);
        t.moved("c1", &plan[0]);
        send(&t, &tx, ssrc[0], &loud(), WINDOW).await;
        send(&t, &tx, ssrc[1], &[0xff; 160], WINDOW).await;
        send(&t, &tx, 12345, &loud(), WINDOW).await; // not a forwarder of ours
        until(|| t.get("c1", "a").map(|v| v.talking) == Some(true) && t.get("c1", "c").is_some()).await;
        assert_eq!((t.get("c1", "b").map(|v| v.talking), t.get("c1", "c").map(|v| v.talking)), (Some(false), Some(false)), "shared, quiet");
        assert!(t.plan("c1").is_empty(), "no quiet single group to swap with");
        // The shared group gets loud: who of b and c is not known.
        send(&t, &tx, ssrc[1], &loud(), WINDOW).await;
        until(|| t.get("c1", "b").is_none()).await;
        assert_eq!(t.get("c1", "c"), None);
        // a falls quiet: the plan swaps it with the one of b, c never alone.
        send(&t, &tx, ssrc[0], &[0xff; 160], WINDOW).await;
        until(|| t.get("c1", "a").map(|v| v.talking) == Some(false)).await;
        let plan = t.plan("c1");
        assert_eq!(plan.len(), 2, "{plan:?}");
        assert_eq!((plan[0].from, plan[0].to, plan[1].pid.as_str()), (1, 0, "a"));
        for m in &plan {
            t.moved("c1", m);
        }
        assert!(t.plan("c1").is_empty(), "the moved groups start a new window");
        t.leave("c1", "a");
        assert_eq!(t.get("c1", "a"), None);
        t.close("c1");
        assert!(t.rooms().is_empty());
        cancel.cancel();
    }
}
