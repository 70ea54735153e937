//! A dialog as data ([`DialogRecord`]): what RFC 3261 §12 says a UA must keep (Call-ID,
//! local and remote URI with their tags, local CSeq, remote target, route set) as plain
//! strings, so it can be written to the coordinator and used by the next active
//! instance. Every request inside a dialog (ACK, BYE, re-INVITE, INFO) is built from
//! it here, the same way before and after a failover.

use rsipstack::sip::{Header, HeadersExt, Request, Response};
use serde::{Deserialize, Serialize};

/// One established dialog of a leg, as the controller (the UAC) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogRecord {
    /// Call-ID.
    pub call_id: String,
    /// Our From header value, with our tag (`<sip:mware@d>;tag=...`).
    pub local: String,
    /// The peer's To header value, with its tag.
    pub remote: String,
    /// The remote target: the Contact URI of the peer's 2xx.
    pub target: String,
    /// The route set: the 2xx's Record-Route values, reversed (loose routes).
    pub routes: Vec<String>,
    /// The last CSeq number we used in this dialog.
    pub cseq: u32,
}

impl DialogRecord {
    /// The dialog a 2xx to `invite` established, or why none.
    pub fn from_2xx(invite: &Request, resp: &Response) -> Result<Self, String> {
        let call_id = invite.call_id_header().map_err(|e| e.to_string())?.value().to_string();
        let local = invite.from_header().map_err(|e| e.to_string())?.value().to_string();
        let remote = resp.to_header().map_err(|e| e.to_string())?.value().to_string();
        let cseq = invite.cseq_header().and_then(|c| c.seq()).map_err(|e| e.to_string())?;
        let contact = resp.typed_contact_headers().map_err(|e| e.to_string())?;
        let target = contact.first().map(|c| c.uri.to_string()).ok_or("the 2xx has no Contact")?;
        let mut routes = vec![];
        for h in resp.headers.iter() {
            if let Header::RecordRoute(rr) = h {
                routes.extend(split_list(rr.value()));
            }
        }
        routes.reverse();
        Ok(DialogRecord { call_id, local, remote, target, routes, cseq })
    }

    /// The request `method` inside the dialog, with CSeq `cseq`, sent from `via`
    /// (`UDP 127.0.0.1:5060`), with `extra` headers (lines without CRLF) and `body`.
    pub fn request(&self, method: &str, cseq: u32, via: &str, extra: &[String], body: &[u8]) -> Result<Request, String> {
        let branch = format!("z9hG4bK{:016x}", rand::random::<u64>());
        let mut s = format!("{method} {} SIP/2.0\r\nVia: SIP/2.0/{via};branch={branch};rport\r\nMax-Forwards: 70\r\n", self.target);
        for r in &self.routes {
            s.push_str(&format!("Route: {r}\r\n"));
        }
        let cseq_method = if method == "ACK" { "ACK" } else { method };
        s.push_str(&format!(
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {cseq_method}\r\nUser-Agent: mware\r\n",
            self.local, self.remote, self.call_id
        ));
        for e in extra {
            s.push_str(e);
            s.push_str("\r\n");
        }
        s.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = s.into_bytes();
        bytes.extend_from_slice(body);
        Request::try_from(bytes).map_err(|e| format!("cannot build {method}: {e}"))
    }

    /// Where a request of this dialog goes first: the first route, else the target.
    pub fn next_hop(&self) -> String {
        match self.routes.first() {
            Some(r) => r.trim().trim_start_matches('<').split('>').next().unwrap_or(r).to_string(),
            None => self.target.clone(),
        }
    }

    /// A short form for logs: the Call-ID and both tags.
    pub fn tags(&self) -> String {
        format!("{} local {} remote {}", self.call_id, tag_of(&self.local), tag_of(&self.remote))
    }
}

fn tag_of(h: &str) -> &str {
    h.split(";tag=").nth(1).and_then(|t| t.split(';').next()).unwrap_or("")
}

/// Splits a header list value on commas outside `<>` and quotes.
fn split_list(v: &str) -> Vec<String> {
    let (mut out, mut cur, mut angle, mut quote) = (vec![], String::new(), false, false);
    for c in v.chars() {
        match c {
            '<' if !quote => angle = true,
            '>' if !quote => angle = false,
            '"' => quote = !quote,
            ',' if !angle && !quote => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_route_lists_are_split_and_reversed() {
        assert_eq!(split_list("<sip:a;lr>, <sip:b;lr;x=\"1,2\">"), vec!["<sip:a;lr>", "<sip:b;lr;x=\"1,2\">"]);
        let inv = Request::try_from(
            "INVITE sip:a@d SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:m@d>;tag=L\r\nTo: <sip:a@d>\r\nCall-ID: c1\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let resp = Response::try_from(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nRecord-Route: <sip:p2;lr>\r\nRecord-Route: <sip:p1;lr>\r\nFrom: <sip:m@d>;tag=L\r\nTo: <sip:a@d>;tag=R\r\nCall-ID: c1\r\nCSeq: 2 INVITE\r\nContact: <sip:a@9.9.9.9:5062>\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let r = DialogRecord::from_2xx(&inv, &resp).unwrap();
        assert_eq!(r.routes, vec!["<sip:p1;lr>", "<sip:p2;lr>"]);
        assert_eq!(r.target, "sip:a@9.9.9.9:5062");
        assert_eq!(r.next_hop(), "sip:p1;lr");
        assert_eq!(r.tags(), "c1 local L remote R");
        let bye = r.request("BYE", 3, "UDP 127.0.0.1:5060", &[], b"").unwrap();
        let text = bye.to_string();
        assert!(text.starts_with("BYE sip:a@9.9.9.9:5062 SIP/2.0"), "{text}");
        assert!(text.contains("CSeq: 3 BYE"), "{text}");
        assert!(text.contains("Route: <sip:p1;lr>"), "{text}");
    }
}
