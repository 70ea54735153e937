//! DNS-01 through RFC 2136 dynamic updates signed with TSIG (RFC 8945): the
//! `_acme-challenge.NAME` TXT record is added before the CA is told to look and its whole
//! set deleted after. Messages are built and signed by hickory-proto and sent over TCP
//! (length-prefixed) to the zone's primary server; the answer's RCODE must be NOERROR and
//! its TSIG signature must verify.

use crate::error::AcmeError;
use crate::section::Dns01;
use hickory_proto::op::{update_message, Message, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordSet, RecordType, TSigner};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Time limit of one update exchange.
const LIMIT: Duration = Duration::from_secs(10);
/// TSIG fudge, seconds.
const FUDGE: u16 = 300;

/// The DNS-01 updater of a section's `dns01`.
pub struct Dns {
    server: SocketAddr,
    zone: Name,
    signer: TSigner,
    ttl: u32,
}

impl Dns {
    /// From the section and the TSIG secret (base64) read from `tsig_key_env`.
    pub fn new(cfg: &Dns01, secret_b64: &str) -> Result<Dns, AcmeError> {
        use base64::Engine;
        let err = |m: String| AcmeError::Dns(m);
        let server = cfg.server.parse().map_err(|_| err(format!("server: expected ADDRESS:PORT, found {:?}", cfg.server)))?;
        let zone = Name::from_str(&format!("{}.", cfg.zone.trim_end_matches('.'))).map_err(|e| err(format!("zone: {e}")))?;
        let key = base64::engine::general_purpose::STANDARD.decode(secret_b64.trim()).map_err(|_| {
            err(format!("{}: expected the TSIG secret in base64, found a value that does not decode (not shown)", cfg.tsig_key_env))
        })?;
        let alg = match cfg.tsig_algorithm.as_str() {
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            _ => TsigAlgorithm::HmacSha256,
        };
        let key_name = Name::from_str(&cfg.tsig_key_name).map_err(|e| err(format!("tsig_key_name: {e}")))?;
        let signer = TSigner::new(key, alg, key_name, FUDGE).map_err(|e| err(format!("TSIG key: {e}")))?;
        Ok(Dns { server, zone, signer, ttl: cfg.ttl })
    }

    fn record_name(&self, ident: &str) -> Result<Name, AcmeError> {
        let bare = ident.trim_start_matches("*.").trim_end_matches('.');
        let name = Name::from_str(&format!("_acme-challenge.{bare}.")).map_err(|e| AcmeError::Dns(format!("{ident}: {e}")))?;
        if !self.zone.zone_of(&name) {
            return Err(AcmeError::Dns(format!("expected a name in the zone {}, found {name}", self.zone)));
        }
        Ok(name)
    }

    /// Adds `value` to the TXT set of `_acme-challenge.IDENT`.
    pub async fn set_txt(&self, ident: &str, value: &str) -> Result<(), AcmeError> {
        let name = self.record_name(ident)?;
        let rec = Record::from_rdata(name.clone(), self.ttl, RData::TXT(TXT::new(vec![value.to_string()])));
        let msg = update_message::append(RecordSet::from(rec), self.zone.clone(), false, false);
        self.send(msg, &format!("adding the TXT record {name}")).await
    }

    /// Deletes the TXT set of `_acme-challenge.IDENT`.
    pub async fn clear_txt(&self, ident: &str) -> Result<(), AcmeError> {
        let name = self.record_name(ident)?;
        let rec = Record::update0(name.clone(), 0, RecordType::TXT);
        let msg = update_message::delete_rrset(rec, self.zone.clone(), false);
        self.send(msg, &format!("deleting the TXT records {name}")).await
    }

    async fn send(&self, mut msg: Message, what: &str) -> Result<(), AcmeError> {
        let err = |m: String| AcmeError::Dns(format!("{what} at {}: {m}", self.server));
        msg.metadata.id = rand::random();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let verifier = msg.finalize(&self.signer, now).map_err(|e| err(format!("signing: {e}")))?;
        let bytes = msg.to_vec().map_err(|e| err(format!("encoding: {e}")))?;
        let exchange = async {
            let mut s = tokio::net::TcpStream::connect(self.server).await?;
            let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&bytes);
            s.write_all(&out).await?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let buf = tokio::time::timeout(LIMIT, exchange)
            .await
            .map_err(|_| err(format!("no answer within {} s", LIMIT.as_secs())))?
            .map_err(|e| err(e.to_string()))?;
        let answer = Message::from_vec(&buf).map_err(|e| err(format!("an answer that does not parse: {e}")))?;
        if answer.metadata.id != msg.metadata.id {
            return Err(err("an answer to another message".into()));
        }
        let rc = answer.metadata.response_code;
        if rc != ResponseCode::NoError {
            return Err(err(format!("expected NOERROR, found {rc} (NOTAUTH: the TSIG key is refused; REFUSED: no update-policy for it)")));
        }
        // The answer must carry the server's signature with our key (not a forged NOERROR).
        let mut v = verifier.ok_or_else(|| err("no TSIG verifier for the answer".into()))?;
        v.verify(&buf).map_err(|e| err(format!("expected an answer signed with the TSIG key, found one that does not verify: {e}")))?;
        Ok(())
    }
}
