//! The controller's SIP user agent, reusable by any service that places calls (Calls,
//! later conferences and notifications): one endpoint on the role's address, a leg per
//! outgoing INVITE ([`leg::Leg`]), and every request inside an established dialog built
//! from its [`record::DialogRecord`], so the next active instance can go on with a
//! dialog it did not start.
//!
//! The stack is `rsipstack` (ADR 0019): its transaction layer retransmits and times out
//! (RFC 3261 timers), its dialog layer runs the initial INVITE (provisional responses,
//! digest challenge, CANCEL). The 2xx ACK is ours (`auto_ack_2xx` off), because a
//! third-party controller's ACK carries the answer it got from the other phone.

pub mod leg;
pub mod record;
pub mod sdp;

use crate::error::CallError;
use crate::section::{SipCredentials, SipTransport};
use record::DialogRecord;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Header, HeadersExt, Method, SipMessage, StatusCode, StatusCodeKind, Uri};
use rsipstack::transaction::endpoint::EndpointOption;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TransportLayer};
use rsipstack::EndpointBuilder;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How the user agent is set up.
#[derive(Debug, Clone)]
pub struct UaOptions {
    /// The address it listens on (the role's `iface`).
    pub ip: IpAddr,
    /// Its port, on every transport.
    pub port: u16,
    /// Transports; requests leave on the first one.
    pub transports: Vec<SipTransport>,
    /// The outbound proxy every initial request is sent to.
    pub proxy: SocketAddr,
    /// Digest credentials, answered when the proxy challenges.
    pub credentials: Option<SipCredentials>,
    /// The user part of the controller's own URI (From, Contact).
    pub user: String,
    /// The Contact to advertise instead of this instance's own address: a group contact
    /// the proxy resolves to whichever instance is active (see `registrar`).
    pub contact: Option<String>,
}

/// A request a phone sent inside a dialog the user agent watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InDialog {
    /// The phone hung up (answered 200).
    Bye,
}

struct Peer {
    events: mpsc::UnboundedSender<InDialog>,
    /// What a re-INVITE of the phone (a session refresh) is answered with.
    sdp: Vec<u8>,
}

/// The user agent. Cheap to clone.
#[derive(Clone)]
pub struct Ua {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: rsipstack::transaction::Endpoint,
    dialogs: Arc<DialogLayer>,
    opts: UaOptions,
    /// `UDP 10.0.0.1:5060`: the sent-by of our Via headers.
    via: String,
    /// Our Contact URI.
    contact: String,
    peers: Mutex<HashMap<String, Peer>>,
    /// The client transaction of each answered INVITE not yet ACKed (by Call-ID): our ACK
    /// is left with the transaction layer under that key, which sends it again for
    /// every retransmission of the 2xx (an ACK lost on UDP), for 64×T1.
    unacked: Mutex<HashMap<String, TransactionKey>>,
    cancel: CancellationToken,
}

impl Ua {
    /// Binds the transports and starts the endpoint; it stops when `cancel` fires.
    pub async fn start(opts: UaOptions, cancel: CancellationToken) -> Result<Ua, CallError> {
        let cancel = cancel.child_token();
        let layer = TransportLayer::new(cancel.child_token());
        let local = SocketAddr::new(opts.ip, opts.port);
        for t in &opts.transports {
            match t {
                SipTransport::Udp => {
                    let udp = UdpConnection::create_connection(local, None, Some(cancel.child_token()))
                        .await
                        .map_err(|e| CallError::Sip(format!("cannot bind udp {local}: {e}")))?;
                    layer.add_transport(udp.into());
                }
                SipTransport::Tcp => {
                    let tcp = TcpListenerConnection::new(local, None)
                        .await
                        .map_err(|e| CallError::Sip(format!("cannot bind tcp {local}: {e}")))?;
                    layer.add_transport(tcp.into());
                }
            }
        }
        let option = EndpointOption { auto_ack_2xx: false, ..Default::default() };
        let endpoint = EndpointBuilder::new()
            .with_user_agent("mware")
            .with_transport_layer(layer)
            .with_cancel_token(cancel.child_token())
            .with_option(option)
            .build();
        let incoming = endpoint.incoming_transactions().map_err(CallError::sip)?;
        let ep = endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = ep.serve().await {
                tracing::warn!(error = %e, "SIP endpoint stopped");
            }
        });
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let first = match opts.transports.first() {
            Some(SipTransport::Tcp) => "TCP",
            _ => "UDP",
        };
        let via = format!("{first} {}", host_port(local));
        let t = if first == "TCP" { ";transport=tcp" } else { "" };
        let contact = opts.contact.clone().unwrap_or_else(|| format!("sip:{}@{}{t}", opts.user, host_port(local)));
        let inner = Arc::new(Inner {
            endpoint,
            dialogs,
            opts,
            via,
            contact,
            peers: Mutex::new(HashMap::new()),
            unacked: Mutex::new(HashMap::new()),
            cancel,
        });
        tokio::spawn(route(inner.clone(), incoming));
        Ok(Ua { inner })
    }

    /// This instance's own address as a SIP URI (what a group contact resolves to).
    pub fn local_uri(&self) -> String {
        let o = &self.inner.opts;
        let t = if matches!(o.transports.first(), Some(SipTransport::Tcp)) { ";transport=tcp" } else { "" };
        format!("sip:{}@{}{t}", o.user, host_port(SocketAddr::new(o.ip, o.port)))
    }

    /// Where new requests go: the outbound proxy, on the first transport.
    pub fn proxy_addr(&self) -> SipAddr {
        let o = &self.inner.opts;
        let mut a = SipAddr::from(o.proxy);
        a.r#type = Some(match o.transports.first() {
            Some(SipTransport::Tcp) => rsipstack::sip::Transport::Tcp,
            _ => rsipstack::sip::Transport::Udp,
        });
        a
    }

    /// The options it was started with.
    pub fn options(&self) -> &UaOptions {
        &self.inner.opts
    }

    /// Our Contact URI (`sip:mware@10.0.0.1:5060`, with `;transport=tcp` on TCP), or the
    /// group contact it was given.
    pub fn contact(&self) -> &str {
        &self.inner.contact
    }

    /// Hands the phone's in-dialog requests of `call_id` to `events`; a re-INVITE of the
    /// phone is answered with `sdp`.
    pub fn watch(&self, call_id: &str, sdp: Vec<u8>, events: mpsc::UnboundedSender<InDialog>) {
        self.inner.peers.lock().unwrap_or_else(|e| e.into_inner()).insert(call_id.to_string(), Peer { events, sdp });
    }

    /// Stops watching `call_id`: its requests get 481 from now on.
    pub fn forget(&self, call_id: &str) {
        self.inner.peers.lock().unwrap_or_else(|e| e.into_inner()).remove(call_id);
        self.inner.unacked.lock().unwrap_or_else(|e| e.into_inner()).remove(call_id);
    }

    /// How many dialogs are watched (live legs).
    pub fn watched(&self) -> usize {
        self.inner.peers.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Sends the ACK for the 2xx with CSeq `cseq` of `rec`, with `sdp` as its body if any.
    /// An ACK has no transaction: it is sent once, to the dialog's next hop.
    pub async fn ack(&self, rec: &DialogRecord, cseq: u32, sdp: Option<&[u8]>) -> Result<(), CallError> {
        let extra = if sdp.is_some() { vec!["Content-Type: application/sdp".to_string()] } else { vec![] };
        let req = rec.request("ACK", cseq, &self.inner.via, &extra, sdp.unwrap_or_default()).map_err(CallError::Sip)?;
        let dest = next_hop(rec)?;
        let layer = &self.inner.endpoint.inner.transport_layer;
        let (conn, addr) = layer.lookup(&dest, None).await.map_err(CallError::sip)?;
        let invite = self.inner.unacked.lock().unwrap_or_else(|e| e.into_inner()).remove(&rec.call_id);
        if let Some(key) = invite {
            // rsipstack answers a retransmitted 2xx of a finished INVITE with the message
            // left here (and forgets it after 64×T1).
            self.inner.endpoint.inner.detach_transaction(&key, Some(SipMessage::Request(req.clone())));
        }
        conn.send(req.into(), Some(&addr)).await.map_err(CallError::sip)
    }

    /// Remembers the INVITE transaction whose 2xx `call_id`'s next ACK answers.
    pub(crate) fn answered(&self, call_id: &str, invite: TransactionKey) {
        self.inner.unacked.lock().unwrap_or_else(|e| e.into_inner()).insert(call_id.to_string(), invite);
    }

    /// Sends `method` inside the dialog (the next CSeq of `rec`, which is raised) and
    /// waits for its final response: `(code, reason phrase, response body)`. A re-INVITE's
    /// 2xx is ACKed here.
    pub async fn request(
        &self,
        rec: &mut DialogRecord,
        method: &str,
        extra: &[String],
        body: &[u8],
    ) -> Result<(u16, String, Vec<u8>), CallError> {
        rec.cseq += 1;
        let cseq = rec.cseq;
        let req = rec.request(method, cseq, &self.inner.via, extra, body).map_err(CallError::Sip)?;
        let (code, reason, body) = self.transact(req, next_hop(rec)?).await?;
        if method == "INVITE" && (200..300).contains(&code) {
            self.ack(rec, cseq, None).await?;
        }
        Ok((code, reason, body))
    }

    /// Sends `req` in a client transaction to `dest` (retransmitted over UDP, timer F /
    /// B) and waits for its final response; 408 when none came.
    pub(crate) async fn transact(&self, req: rsipstack::sip::Request, dest: SipAddr) -> Result<(u16, String, Vec<u8>), CallError> {
        let key = TransactionKey::from_request(&req, TransactionRole::Client).map_err(CallError::sip)?;
        let mut tx = Transaction::new_client(key, req, self.inner.endpoint.inner.clone(), None);
        tx.destination = Some(dest);
        tx.send().await.map_err(CallError::sip)?;
        while let Some(msg) = tx.receive().await {
            if let SipMessage::Response(r) = msg {
                if r.status_code.kind() == StatusCodeKind::Provisional {
                    continue;
                }
                return Ok((r.status_code.code(), reason(&r), r.body.clone()));
            }
        }
        Ok((408, "Request Timeout (no answer to the request)".into(), vec![]))
    }

    /// Ends the dialog with a BYE carrying `why` in a Reason header (RFC 3326).
    pub async fn bye(&self, rec: &mut DialogRecord, why: &str) -> Result<u16, CallError> {
        let reason = format!("Reason: SIP;cause=200;text=\"{}\"", why.replace(['"', '\\', '\r', '\n'], " "));
        let (code, _, _) = self.request(rec, "BYE", &[reason], b"").await?;
        self.forget(&rec.call_id);
        Ok(code)
    }
}

/// The reason phrase of a response (the one on the wire when it was not the standard one).
pub(crate) fn reason(r: &rsipstack::sip::Response) -> String {
    r.wire_reason.clone().unwrap_or_else(|| r.status_code.to_string().split_once(' ').map(|x| x.1.to_string()).unwrap_or_default())
}

fn host_port(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => v.to_string(),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

fn next_hop(rec: &DialogRecord) -> Result<SipAddr, CallError> {
    let hop = rec.next_hop();
    let uri = Uri::try_from(hop.as_str()).map_err(|e| CallError::Sip(format!("bad next hop {hop:?}: {e}")))?;
    SipAddr::try_from(&uri).map_err(|e| CallError::Sip(format!("bad next hop {hop:?}: {e}")))
}

/// Answers what phones send to the controller.
async fn route(inner: Arc<Inner>, mut incoming: TransactionReceiver) {
    loop {
        let tx = tokio::select! {
            _ = inner.cancel.cancelled() => return,
            t = incoming.recv() => match t { Some(t) => t, None => return },
        };
        let inner = inner.clone();
        tokio::spawn(async move { inner.serve(tx).await });
    }
}

impl Inner {
    async fn serve(&self, mut tx: Transaction) {
        let req = tx.original.clone();
        if req.method == Method::Ack {
            return;
        }
        let call_id = req.call_id_header().map(|c| c.value().to_string()).unwrap_or_default();
        let in_dialog = req.to_header().ok().and_then(|t| t.tag().ok().flatten()).is_some();
        let known = {
            let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers.get(&call_id).map(|p| (p.events.clone(), p.sdp.clone()))
        };
        let r = match (&req.method, known) {
            (Method::Bye, Some((events, _))) => {
                let r = tx.reply(StatusCode::OK).await;
                let _ = events.send(InDialog::Bye);
                r
            }
            (Method::Invite, Some((_, sdp))) => {
                let mut resp = self.endpoint.inner.make_response(&req, StatusCode::OK, Some(sdp));
                resp.headers.push(Header::Contact(format!("<{}>", self.contact).into()));
                resp.headers.push(Header::ContentType("application/sdp".into()));
                tx.respond(resp).await
            }
            (_, Some(_)) => tx.reply(StatusCode::OK).await,
            (Method::Options, None) if !in_dialog => tx.reply(StatusCode::OK).await,
            (_, None) if in_dialog => tx.reply(StatusCode::CallTransactionDoesNotExist).await,
            _ => tx.reply(StatusCode::MethodNotAllowed).await,
        };
        if let Err(e) = r {
            tracing::debug!(error = %e, method = %req.method, "cannot answer a request");
        }
    }
}
