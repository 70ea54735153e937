//! The mixer's side of who is talking ([`crate::talk`] decides, [`crate::talkers`]
//! listens): each room's groups forwarded to this instance, the forwarders of the
//! instance that ran a room before stopped, and the moves of participants between
//! groups that single a talker out of a shared group.

use super::{Room, Rooms};
use crate::error::CallError;
use crate::lock;
use crate::mixer;
use std::sync::Arc;
use std::time::Duration;

impl Rooms {
    /// Has the mixer forward each group of `r` here. Without it (an error of the mixer)
    /// the room works, and its participants show no `talking`.
    pub(super) async fn open_talk(&self, r: &Room) {
        if r.groups == 0 {
            return;
        }
        let ssrcs = self.talkers.open(&r.id, r.groups as usize);
        for (i, ssrc) in ssrcs.into_iter().enumerate() {
            if let Err(e) = self.mixer.forward(r.mixer.room, &mixer::group(i as u32 + 1), self.talkers.addr(), ssrc).await {
                tracing::warn!(conference = %r.id, error = %e, "no talk detection for this conference");
                self.talkers.close(&r.id);
                return;
            }
        }
    }

    /// After a takeover of room `id`: stops its forwarders that point elsewhere (at the
    /// instance that ran it before), forwards its groups here, and puts every joined
    /// participant in the last group (where they are in the mixer is not stored; the
    /// moves spread them again).
    pub(super) async fn retarget(&self, id: &str) {
        let Ok(room) = self.get(id) else { return };
        let r = &room;
        let mine = self.talkers.addr();
        match self.mixer.forwarders(r.mixer.room).await {
            Ok(all) => {
                for (stream, ip, port) in all.into_iter().filter(|(_, ip, port)| *ip != mine.ip().to_string() || *port != mine.port()) {
                    if let Err(e) = self.mixer.stop_forward(r.mixer.room, stream).await {
                        tracing::warn!(conference = %r.id, error = %e, forwarder = %format!("{ip}:{port}"), "an old forwarder could not be stopped");
                    }
                }
            }
            Err(e) => tracing::warn!(conference = %r.id, error = %e, "the room's forwarders could not be listed"),
        }
        self.open_talk(r).await;
        let last = mixer::group(r.groups);
        // The room as it is now (a participant may have joined while the forwarders were
        // being set up).
        let now = self.get(id).unwrap_or_else(|_| r.clone());
        for m in now.participants.values().filter(|m| m.state == "joined") {
            let Some(call) = &m.call else { continue };
            match self.mixer.set_group(call.joined.handle, &last).await {
                Ok(()) => {
                    self.talkers.join(&r.id, &m.pid);
                }
                Err(e) => tracing::warn!(conference = %r.id, participant = %m.pid, error = %e, "not placed for talk detection"),
            }
        }
    }

    /// Until the activity ends, every 100 ms: makes the moves [`crate::talk::plan`] asks
    /// for in each room (a Janus `configure` of the participant's group each).
    pub(super) async fn find_talkers(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = self.eng.cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            for id in self.talkers.rooms() {
                if let Err(e) = self.make_moves(&id).await {
                    tracing::warn!(conference = %id, error = %e, "a move for talk detection failed");
                }
            }
        }
    }

    async fn make_moves(&self, id: &str) -> Result<(), CallError> {
        let moves = self.talkers.plan(id);
        if moves.is_empty() {
            return Ok(());
        }
        let handles: Vec<Option<u64>> = {
            let rooms = lock(&self.rooms);
            let Some(room) = rooms.get(id) else { return Ok(()) };
            moves.iter().map(|m| room.participants.get(&m.pid).and_then(|p| p.call.as_ref()).map(|c| c.joined.handle)).collect()
        };
        for (m, handle) in moves.iter().zip(handles) {
            match handle {
                Some(h) => {
                    self.mixer.set_group(h, &mixer::group(m.to as u32 + 1)).await?;
                    self.talkers.moved(id, m);
                }
                // Left meanwhile (its BYE is being handled): not a member any more.
                None => self.talkers.leave(id, &m.pid),
            }
        }
        Ok(())
    }
}

/// The address of this host that the mixer at `url` reaches it on: the source address of
/// the route to the mixer's host (where its forwarders are sent).
pub(super) async fn reachable_from(url: &str) -> Result<std::net::IpAddr, CallError> {
    // The errors name the mixer's host only: a URL may carry a password.
    let u = reqwest::Url::parse(url).map_err(|e| CallError::Sip(format!("mixer URL: {e}")))?;
    let host = u.host_str().ok_or_else(|| CallError::Sip("mixer URL: no host".into()))?.trim_matches(['[', ']']).to_string();
    let bad = |e: String| CallError::Sip(format!("mixer host {host}: {e}"));
    let port = u.port_or_known_default().unwrap_or(80);
    let to = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".into()))?;
    let any: std::net::SocketAddr = if to.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let probe = tokio::net::UdpSocket::bind(any).await.map_err(|e| bad(e.to_string()))?;
    probe.connect(to).await.map_err(|e| bad(e.to_string()))?;
    Ok(probe.local_addr().map_err(|e| bad(e.to_string()))?.ip())
}
