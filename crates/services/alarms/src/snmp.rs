//! The SNMP channel: each alarm to one manager as a v2c or v3 trap (fire and forget)
//! or inform (answered; retried until the manager answers), in order, resuming from the
//! channel's cursor. The notification and its varbinds are those of
//! `examples/mibs/MWARE-ALARMS-MIB.txt` (under the documentation enterprise number
//! 32473 of RFC 5612). Encoding and USM (authPriv) are async-snmp's. A v2c trap is
//! encoded by async-snmp and sent from a plain socket that the runtime does not watch:
//! nothing waits on it, so a trap sent wakes no thread (through async-snmp's client,
//! the socket's write readiness woke a runtime thread for every trap).

use crate::alarm::{Alarm, Source};
use crate::channel::Sink;
use crate::section::SnmpManager;
use async_snmp::message::CommunityMessage;
use async_snmp::{Auth, AuthProtocol, Client, Oid, Pdu, PrivProtocol, Retry, UdpHandle, Value, VarBind};
use std::net::{SocketAddr, UdpSocket};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// `mwareAlarmsMIB`: enterprises.32473.7.
pub const BASE: &[u32] = &[1, 3, 6, 1, 4, 1, 32473, 7];

fn oid(tail: &[u32]) -> Oid {
    Oid::new(BASE.iter().chain(tail).copied())
}

/// The notifications (`[mwareAlarm, mwareStateChange]`) and the varbinds' OIDs
/// (`mwareAlarmObjects.N.0` at index N), built once.
static OIDS: LazyLock<([Oid; 2], Vec<Oid>)> = LazyLock::new(|| ([oid(&[0, 1]), oid(&[0, 2])], (0..=13).map(|n| oid(&[1, n, 0])).collect()));

/// `mwareAlarm` (a syslog, summary or API alarm) or `mwareStateChange` (monitoring).
pub fn notification(a: &Alarm) -> Oid {
    OIDS.0[usize::from(a.source == Source::Monitoring)].clone()
}

fn text(s: &str) -> Value {
    Value::OctetString(s.as_bytes().to_vec().into())
}

/// The varbinds of an alarm, in the MIB's order.
pub fn varbinds(a: &Alarm) -> Vec<VarBind> {
    let o = |n: usize| OIDS.1[n].clone();
    let mut v = vec![
        VarBind::new(o(1), text(&a.id)),
        VarBind::new(o(2), text(&a.rule)),
        VarBind::new(o(3), Value::Integer(a.rank() as i32)),
        VarBind::new(o(4), text(&a.host)),
        VarBind::new(o(5), text(&a.app)),
        VarBind::new(o(6), text(&a.message)),
        VarBind::new(o(7), text(&a.site)),
        VarBind::new(o(8), Value::Gauge32(a.group)),
        VarBind::new(o(9), text(&a.instance)),
        VarBind::new(o(10), Value::Gauge32(a.count)),
        VarBind::new(o(13), text(&humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(a.at_ms)).to_string())),
    ];
    if let (Some(item), Some(state)) = (&a.item, &a.state) {
        let s = match state.as_str() {
            "ok" => 1,
            "warning" => 2,
            _ => 3,
        };
        v.push(VarBind::new(o(11), text(item)));
        v.push(VarBind::new(o(12), Value::Integer(s)));
    }
    v
}

/// One manager.
pub struct Manager {
    cfg: SnmpManager,
    client: Option<Client<UdpHandle>>,
    /// v2c traps: the manager's address and a socket the runtime does not watch.
    plain: Option<(SocketAddr, UdpSocket)>,
    request_id: i32,
    engine_id: Vec<u8>,
    started: Instant,
}

impl Manager {
    /// A manager; `engine_id` is this sender's v3 engine id unless the section sets one.
    pub fn new(cfg: SnmpManager, engine_id: Vec<u8>) -> Self {
        let engine_id = cfg.engine_id.as_deref().and_then(hex).unwrap_or(engine_id);
        Manager { cfg, client: None, plain: None, request_id: 0, engine_id, started: Instant::now() }
    }

    /// The v2c community (`public` unless the section sets one).
    fn community(&self) -> String {
        self.cfg.community.as_ref().map(|s| s.expose().to_string()).unwrap_or_else(|| "public".into())
    }

    /// The v2c trap socket.
    async fn open_plain(&self) -> anyhow::Result<(SocketAddr, UdpSocket)> {
        let a = &self.cfg.address;
        let to = tokio::net::lookup_host(a.as_str())
            .await
            .ok()
            .and_then(|mut it| it.next())
            .ok_or_else(|| anyhow::anyhow!("cannot resolve the SNMP manager {a}"))?;
        let any: SocketAddr = if to.is_ipv4() { "0.0.0.0:0".parse()? } else { "[::]:0".parse()? };
        let s = UdpSocket::bind(any).map_err(|e| anyhow::anyhow!("cannot open a socket for traps to {a}: {e}"))?;
        s.set_nonblocking(true)?;
        Ok((to, s))
    }

    /// v2c traps: each encoded by async-snmp, sent without waiting for readiness (a
    /// full send buffer is waited out a millisecond at a time).
    async fn send_plain(&mut self, batch: &[std::sync::Arc<Alarm>], uptime: u32) -> Result<usize, crate::channel::SendError> {
        let community: bytes::Bytes = self.community().into();
        let (to, sock) = match self.plain.take() {
            Some(p) => p,
            None => self.open_plain().await.map_err(crate::channel::SendError::other)?,
        };
        let mut id = self.request_id;
        for (i, a) in batch.iter().enumerate() {
            id = id.wrapping_add(1) & i32::MAX;
            let data = CommunityMessage::v2c(community.clone(), Pdu::trap_v2(id, uptime, &notification(a), varbinds(a))).encode();
            loop {
                match sock.send_to(&data, to) {
                    Ok(_) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => tokio::time::sleep(Duration::from_millis(1)).await,
                    Err(e) => {
                        self.request_id = id;
                        if i == 0 {
                            // A fresh socket next time.
                            let address = &self.cfg.address;
                            return Err(crate::channel::SendError::other(anyhow::anyhow!("trap to {address}: {e}")));
                        }
                        self.plain = Some((to, sock));
                        return Ok(i);
                    }
                }
            }
        }
        self.request_id = id;
        self.plain = Some((to, sock));
        Ok(batch.len())
    }

    async fn client(&mut self) -> anyhow::Result<&Client<UdpHandle>> {
        if self.client.is_none() {
            let c = &self.cfg;
            let auth: Auth = if c.version == "v3" {
                let ap = match c.auth_protocol.as_deref() {
                    Some("sha1") => AuthProtocol::Sha1,
                    Some("sha512") => AuthProtocol::Sha512,
                    _ => AuthProtocol::Sha256,
                };
                let pp = match c.priv_protocol.as_deref() {
                    Some("aes256") => PrivProtocol::Aes256,
                    Some("des") => PrivProtocol::Des,
                    _ => PrivProtocol::Aes128,
                };
                let pw = |s: &Option<mware_config::Secret>| s.as_ref().map(|s| s.expose().to_string()).unwrap_or_default();
                Auth::usm(c.user.clone().unwrap_or_default()).auth(ap, pw(&c.auth_password)).privacy(pp, pw(&c.priv_password)).into()
            } else {
                Auth::v2c(self.community())
            };
            let client = Client::builder(c.address.as_str(), auth)
                .timeout(Duration::from_millis(c.timeout_ms))
                .retry(Retry::none())
                .local_engine_id(self.engine_id.clone())
                .connect()
                .await
                .map_err(|e| anyhow::anyhow!("cannot open the SNMP session to {}: {e}", c.address))?;
            self.client = Some(client);
        }
        Ok(self.client.as_ref().expect("set above"))
    }
}

#[async_trait::async_trait]
impl Sink for Manager {
    fn name(&self) -> String {
        format!("snmp:{}", self.cfg.address)
    }

    async fn send(&mut self, batch: &[std::sync::Arc<Alarm>]) -> Result<usize, crate::channel::SendError> {
        let uptime = (self.started.elapsed().as_millis() / 10) as u32;
        let inform = self.cfg.inform;
        if !inform && self.cfg.version != "v3" {
            return self.send_plain(batch, uptime).await;
        }
        let address = self.cfg.address.clone();
        let client = self.client().await.map_err(crate::channel::SendError::other)?;
        for (i, a) in batch.iter().enumerate() {
            let r = if inform {
                client.send_inform(&notification(a), uptime, varbinds(a)).await
            } else {
                client.send_trap(&notification(a), uptime, varbinds(a)).await
            };
            if let Err(e) = r {
                if i == 0 {
                    self.client = None;
                    let what = if inform { "inform" } else { "trap" };
                    return Err(crate::channel::SendError::other(anyhow::anyhow!("{}", failure(what, &address, &e, self.cfg.timeout_ms))));
                }
                return Ok(i);
            }
        }
        Ok(batch.len())
    }
}

/// Why a send failed, in words. A timeout names the configured wait and retries (the
/// library's own text says "timeout after 0ns" when it does not retry itself); the channel
/// tries the batch again after its pause.
fn failure(what: &str, address: &str, e: &async_snmp::Error, timeout_ms: u64) -> String {
    match e {
        async_snmp::Error::Timeout { .. } => {
            format!("{what} to {address}: no answer within timeout_ms = {timeout_ms} ms (one attempt, no retry within the attempt; the channel sends the batch again)")
        }
        other => format!("{what} to {address}: {other}"),
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// This sender's default v3 engine id: RFC 3411 text format under enterprise 32473,
/// `mware/<group>/<instance>` (at most 27 bytes of text).
pub fn default_engine_id(group: u32, instance: &str) -> Vec<u8> {
    let mut id = vec![0x80, 0x00, 0x7e, 0xd9, 0x04];
    let t = format!("mware/{group}/{instance}");
    id.extend(t.bytes().take(27));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_names_the_configured_wait() {
        let e = async_snmp::Error::Timeout { target: "127.0.0.1:162".parse().unwrap(), elapsed: Duration::ZERO, retries: 0 };
        let text = failure("inform", "127.0.0.1:162", &e, 1500);
        assert!(text.contains("timeout_ms = 1500 ms") && !text.contains("0ns"), "{text}");
        assert!(text.starts_with("inform to 127.0.0.1:162: "), "{text}");
    }
}
