//! One outgoing INVITE ([`Leg`]) and what becomes of it: ringing, answered (with the
//! dialog as a [`DialogRecord`] and the phone's SDP), or failed with its final code.
//! The 2xx is not ACKed here: the call decides what the ACK carries.

use super::record::DialogRecord;
use super::{InDialog, Ua};
use crate::error::CallError;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCodeKind, Uri};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use tokio::sync::mpsc;

/// What happened to a leg.
#[derive(Debug)]
pub enum LegEvent {
    /// A provisional response (180, 183) with this code.
    Ringing(u16),
    /// A 2xx: the dialog, its CSeq and the phone's SDP (an offer when the INVITE had
    /// none). The 2xx still waits for its ACK ([`Ua::ack`]).
    Answered {
        /// The established dialog.
        record: DialogRecord,
        /// The body of the 2xx.
        sdp: Vec<u8>,
    },
    /// A final failure: the code (408 for a timeout, 487 when cancelled) and reason.
    Failed {
        /// SIP status code, or 408/503 when no response came / nothing could be sent.
        code: u16,
        /// Reason phrase or what failed.
        reason: String,
    },
}

/// An INVITE on its way.
pub struct Leg {
    dialog: InviteDialog,
    states: DialogStateReceiver,
    join: Option<rsipstack::platform::JoinHandle<InviteAsyncResult>>,
    ua: Ua,
}

/// Who a leg calls and how.
#[derive(Debug, Clone)]
pub struct Dial {
    /// The target (`sip:alice@example.test`).
    pub to: String,
    /// The domain of our From (`sip:{user}@{domain}`).
    pub domain: String,
    /// Display name of our From (the caller id shown to the phone).
    pub display: Option<String>,
    /// The offer, if any (none: the phone's 2xx carries the offer).
    pub sdp: Option<Vec<u8>>,
    /// Session timer (RFC 4028) asked for, seconds; 0: none.
    pub session_s: u32,
}

impl Leg {
    /// Sends the INVITE through the outbound proxy.
    pub fn invite(ua: &Ua, d: Dial) -> Result<Leg, CallError> {
        Leg::invite_as(ua, d, None)
    }

    /// [`Leg::invite`] with a Call-ID chosen by the caller (written before the INVITE
    /// leaves, so a record names the call it is about).
    pub fn invite_as(ua: &Ua, d: Dial, call_id: Option<String>) -> Result<Leg, CallError> {
        let o = ua.options();
        let bad = |f: &str, e: String| CallError::Invalid { field: f.into(), msg: e };
        let callee = Uri::try_from(d.to.as_str()).map_err(|e| bad("to", format!("not a SIP URI: {e}")))?;
        let caller = Uri::try_from(format!("sip:{}@{}", o.user, d.domain).as_str()).map_err(|e| bad("domain", e.to_string()))?;
        let contact = Uri::try_from(ua.contact()).map_err(CallError::sip)?;
        let credential = o.credentials.as_ref().map(|c| Credential {
            username: c.user.clone(),
            password: c.password.expose().to_string(),
            realm: c.realm.clone(),
            auth_username: None,
        });
        let destination = Some(ua.proxy_addr());
        let (content_type, offer) = match d.sdp {
            Some(s) => (Some("application/sdp".to_string()), Some(s)),
            None => (None, None),
        };
        let opt = InviteOption {
            caller_display_name: d.display,
            caller,
            callee,
            destination,
            content_type,
            offer,
            contact,
            credential,
            headers: Some(headers(d.session_s)),
            call_id,
            ..Default::default()
        };
        let (tx, states) = mpsc::unbounded_channel();
        let (dialog, join) = ua.inner.dialogs.do_invite_async(opt, tx).map_err(CallError::sip)?;
        Ok(Leg { dialog, states, join: Some(join), ua: ua.clone() })
    }

    /// The Call-ID of the INVITE.
    pub fn call_id(&self) -> String {
        self.dialog.id().call_id
    }

    /// The next thing that happens; after `Answered` or `Failed` it never returns.
    pub async fn next(&mut self) -> LegEvent {
        loop {
            let Some(join) = self.join.as_mut() else { return std::future::pending().await };
            tokio::select! {
                r = join => {
                    self.join = None;
                    return self.finish(r);
                }
                s = self.states.recv() => match s {
                    Some(DialogState::Early(_, resp)) => return LegEvent::Ringing(resp.status_code.code()),
                    Some(_) => continue,
                    None => std::future::pending::<()>().await,
                },
            }
        }
    }

    fn finish(&mut self, r: Result<InviteAsyncResult, tokio::task::JoinError>) -> LegEvent {
        let failed = |code, reason: String| LegEvent::Failed { code, reason };
        let (id, resp) = match r {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return failed(503, format!("INVITE could not be sent: {e}")),
            Err(e) => return failed(503, format!("INVITE task failed: {e}")),
        };
        let Some(resp) = resp else {
            return failed(408, "no final response".into());
        };
        if resp.status_code.kind() != StatusCodeKind::Successful {
            return failed(resp.status_code.code(), super::reason(&resp));
        }
        // From here on the dialog is ours: in-dialog requests go through the record.
        self.ua.inner.dialogs.remove_dialog(&id);
        let invite = self.dialog.initial_request();
        if let Ok(key) = TransactionKey::from_response(&resp, TransactionRole::Client) {
            self.ua.answered(&self.call_id(), key);
        }
        match DialogRecord::from_2xx(&invite, &resp) {
            Ok(record) => LegEvent::Answered { record, sdp: resp.body.clone() },
            Err(e) => failed(502, format!("unusable 2xx: {e}")),
        }
    }

    /// Cancels the INVITE (RFC 3261 §9.1): a CANCEL with the INVITE's Request-URI, Via,
    /// Call-ID, From, To and CSeq number, sent where the INVITE went (the proxy). The
    /// INVITE then ends with 487, or with a 2xx that crossed it (the call ends that).
    pub async fn cancel(&self) {
        let inv = self.dialog.initial_request();
        let cancel = match cancel_of(&inv) {
            Ok(c) => c,
            Err(e) => return tracing::warn!(error = %e, "cannot build CANCEL"),
        };
        let dest = self.ua.proxy_addr();
        match self.ua.transact(cancel, dest).await {
            Ok((code, _, _)) => tracing::debug!(code, "CANCEL answered"),
            Err(e) => tracing::debug!(error = %e, "CANCEL failed"),
        }
    }

    /// Watches the phone's in-dialog requests once answered (see [`Ua::watch`]).
    pub fn watch(&self, record: &DialogRecord, sdp: Vec<u8>, events: mpsc::UnboundedSender<InDialog>) {
        self.ua.watch(&record.call_id, sdp, events);
    }
}

/// The CANCEL of `inv`.
fn cancel_of(inv: &rsipstack::sip::Request) -> Result<rsipstack::sip::Request, String> {
    use rsipstack::sip::HeadersExt;
    let e = |x: rsipstack::sip::Error| x.to_string();
    let via = inv.via_header().map_err(e)?.value().to_string();
    let from = inv.from_header().map_err(e)?.value().to_string();
    let to = inv.to_header().map_err(e)?.value().to_string();
    let call_id = inv.call_id_header().map_err(e)?.value().to_string();
    let seq = inv.cseq_header().and_then(|c| c.seq()).map_err(e)?;
    let mut s = format!("CANCEL {} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n", inv.uri);
    for h in inv.headers.iter() {
        if let Header::Route(r) = h {
            s.push_str(&format!("Route: {}\r\n", r.value()));
        }
    }
    s.push_str(&format!("From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {seq} CANCEL\r\nContent-Length: 0\r\n\r\n"));
    rsipstack::sip::Request::try_from(s.as_str()).map_err(|x| x.to_string())
}

/// Headers of our INVITEs: what we accept, and the session timer we refresh (we are
/// the refresher: `refresher=uac`).
pub(crate) fn headers(session_s: u32) -> Vec<Header> {
    let mut h = vec![Header::Other("Allow".into(), "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO".into())];
    if session_s > 0 {
        h.push(Header::Other("Supported".into(), "timer".into()));
        h.push(Header::Other("Session-Expires".into(), format!("{session_s};refresher=uac")));
    }
    h
}
