//! Conference participants: mware invites the phone without an offer, the phone's 2xx
//! carries one (its RTP address), the participant joins the Janus room as a plain RTP
//! stream to that address, and the ACK answers the phone with the room's RTP address
//! ([`crate::mixer`]). From then on the audio flows between the phone and the mixer,
//! never through mware. The same offer-in-2xx shape as the calls (RFC 3725 flow I).
//!
//! Tested against real Janus, Kamailio and baresip (`tests/conference.rs`); the rooms,
//! their records in the coordinator and their failover are [`crate::rooms`].

use crate::error::CallError;
use crate::mixer::{Joined, Mixer};
use crate::ua::leg::{Dial, Leg, LegEvent};
use crate::ua::record::DialogRecord;
use crate::ua::{sdp, Ua};
use serde::{Deserialize, Serialize};

/// A phone in a conference.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Participant {
    /// Who was called.
    pub party: String,
    /// Its dialog (for the BYE, from any instance).
    pub dialog: DialogRecord,
    /// Its place in the room.
    pub joined: Joined,
    /// Muted by the operator.
    pub muted: bool,
}

/// The address and port of the audio stream of an SDP offer that offers PCMU.
pub fn pcmu_target(offer: &str) -> Result<(String, u16), String> {
    let ip = offer.lines().find_map(|l| l.trim().strip_prefix("c=IN IP4 ")).map(|a| a.trim().to_string());
    let m = offer.lines().find(|l| l.starts_with("m=audio ")).ok_or("the offer has no audio stream")?;
    let f: Vec<&str> = m.split_whitespace().collect();
    let port = f.get(1).and_then(|p| p.parse::<u16>().ok()).filter(|p| *p != 0).ok_or("the audio stream has no port")?;
    if !f.iter().skip(3).any(|pt| *pt == "0") {
        return Err("the phone does not offer PCMU (payload 0)".into());
    }
    Ok((ip.ok_or("the offer has no IPv4 connection address")?, port))
}

/// The answer that points the phone at the room: PCMU from `ip:port`.
pub fn answer_for(joined: &Joined) -> String {
    format!(
        "v=0\r\no=mware 1 1 IN IP4 {ip}\r\ns=conference\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ip = joined.rtp_ip,
        port = joined.rtp_port
    )
}

/// Calls `to` in `domain` and joins it to `room` (in `group`, when the room has groups)
/// when it answers.
pub async fn dial(ua: &Ua, mixer: &Mixer, room: u64, domain: &str, to: &str, group: Option<&str>) -> Result<Participant, CallError> {
    let dial = Dial { to: to.to_string(), domain: domain.to_string(), display: None, sdp: None, session_s: 0 };
    let mut leg = Leg::invite(ua, dial)?;
    let (dialog, offer) = loop {
        match leg.next().await {
            LegEvent::Ringing(_) => continue,
            LegEvent::Answered { record, sdp } => break (record, String::from_utf8_lossy(&sdp).into_owned()),
            LegEvent::Failed { code, reason } => return Err(CallError::Conflict(format!("{to} did not join: {code} {reason}"))),
        }
    };
    let joined = match pcmu_target(&offer) {
        Ok((ip, port)) => mixer.join(room, to, &ip, port, group).await,
        Err(e) => Err(CallError::Conflict(format!("{to}: {e}"))),
    };
    match joined {
        Ok(joined) => {
            ua.ack(&dialog, dialog.cseq, Some(answer_for(&joined).as_bytes())).await?;
            Ok(Participant { party: to.to_string(), dialog, joined, muted: false })
        }
        Err(e) => {
            // Answer the offer with a refusal and end the leg: the phone is not left up.
            let mut d = dialog;
            let _ = ua.ack(&d, d.cseq, Some(sdp::refuse(&offer).as_bytes())).await;
            let _ = ua.bye(&mut d, "could not join the conference").await;
            Err(e)
        }
    }
}

/// Ends a participant's call and removes it from the room.
pub async fn remove(ua: &Ua, mixer: &Mixer, room: u64, p: &mut Participant) -> Result<(), CallError> {
    let bye = ua.bye(&mut p.dialog, "removed from the conference").await;
    mixer.kick(room, &p.joined).await?;
    bye.map(|_| ())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_phone_s_pcmu_address_is_read_from_its_offer() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.7\r\ns=-\r\nc=IN IP4 10.0.0.7\r\nt=0 0\r\nm=audio 40002 RTP/AVP 8 0 101\r\n";
        assert_eq!(super::pcmu_target(offer), Ok(("10.0.0.7".into(), 40002)));
        assert!(super::pcmu_target("m=audio 40002 RTP/AVP 8\r\nc=IN IP4 1.2.3.4\r\n").unwrap_err().contains("PCMU"));
        assert!(super::pcmu_target("c=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n").is_err());
    }
}
