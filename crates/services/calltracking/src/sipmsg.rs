//! The few SIP messages a watcher of the dialog event package exchanges (RFC 3261,
//! RFC 6665), pure: [`Msg::parse`] reads a request or response received over UDP
//! (headers by name, compact forms expanded), [`subscribe`] writes a SUBSCRIBE
//! (initial, refresh or `Expires: 0`), [`answer`] a response to a NOTIFY (its Via,
//! From, To, Call-ID and CSeq copied). Values written come from the checked section
//! or from tags and Call-IDs made here, never from a peer's free text.

use std::net::SocketAddr;

/// A SIP message read from a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// A request's method (`NOTIFY`), or `None` for a response.
    pub method: Option<String>,
    /// A response's status code.
    pub code: u16,
    /// Headers in order: lowercase full name, value.
    pub headers: Vec<(String, String)>,
    /// The body (Content-Length bytes, or all that follows).
    pub body: String,
}

fn full_name(n: &str) -> String {
    let n = n.trim().to_ascii_lowercase();
    match n.as_str() {
        "i" => "call-id",
        "f" => "from",
        "t" => "to",
        "m" => "contact",
        "v" => "via",
        "o" => "event",
        "l" => "content-length",
        "c" => "content-type",
        _ => return n,
    }
    .to_string()
}

impl Msg {
    /// Reads a datagram; `None` when it is no SIP message.
    pub fn parse(data: &[u8]) -> Option<Msg> {
        let text = std::str::from_utf8(data).ok()?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n");
        let first = lines.next()?;
        let (method, code) = if let Some(status) = first.strip_prefix("SIP/2.0 ") {
            (None, status.split(' ').next()?.parse::<u16>().ok().filter(|c| (100..700).contains(c))?)
        } else {
            let mut parts = first.split(' ');
            let m = parts.next()?;
            (parts.nth(1)? == "SIP/2.0" && !m.is_empty()).then_some(())?;
            (Some(m.to_string()), 0)
        };
        let mut headers: Vec<(String, String)> = vec![];
        for l in lines {
            if l.starts_with([' ', '\t']) {
                // A folded line continues the header before it.
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(l.trim());
                }
                continue;
            }
            let (n, v) = l.split_once(':')?;
            headers.push((full_name(n), v.trim().to_string()));
        }
        let mut m = Msg { method, code, headers, body: String::new() };
        let len = m.header("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(body.len());
        m.body = body.get(..len.min(body.len())).unwrap_or(body).to_string();
        Some(m)
    }

    /// The first header `name` (lowercase full name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let (n, m) = self.header("cseq")?.split_once(' ')?;
        Some((n.trim().parse().ok()?, m.trim()))
    }

    /// The `tag` parameter of header `name` (From or To).
    pub fn tag(&self, name: &str) -> Option<&str> {
        param(self.header(name)?, "tag")
    }

    /// The URI of the first Contact.
    pub fn contact_uri(&self) -> Option<&str> {
        let c = self.header("contact")?;
        match (c.find('<'), c.find('>')) {
            (Some(a), Some(b)) if a < b => Some(&c[a + 1..b]),
            _ => c.split(';').next().map(str::trim),
        }
    }

    /// `expires` of Subscription-State, or the Expires header.
    pub fn expires(&self) -> Option<u32> {
        if let Some(e) = self.header("subscription-state").and_then(|s| param(s, "expires")) {
            return e.parse().ok();
        }
        self.header("expires")?.trim().parse().ok()
    }
}

/// A `;name=value` parameter of a header value (outside its `<...>`).
fn param<'a>(v: &'a str, name: &str) -> Option<&'a str> {
    let after = v.rfind('>').map(|i| &v[i + 1..]).unwrap_or(v);
    after.split(';').skip(1).find_map(|p| {
        let (k, val) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| val.trim())
    })
}

/// What a SUBSCRIBE carries.
#[derive(Debug, Clone)]
pub struct Subscribe<'a> {
    /// The Request-URI: the number, or the server's Contact for a refresh.
    pub target: &'a str,
    /// The number (To).
    pub number: &'a str,
    /// The server's tag (To), for a refresh.
    pub to_tag: Option<&'a str>,
    /// Our tag (From).
    pub from_tag: &'a str,
    /// The subscription's Call-ID.
    pub call_id: &'a str,
    /// CSeq number.
    pub cseq: u32,
    /// The Via branch (new for each request).
    pub branch: &'a str,
    /// Where NOTIFYs come back (our socket's address as the server reaches it).
    pub local: SocketAddr,
    /// The lifetime asked for, s (0 ends the subscription).
    pub expires: u32,
}

/// A SUBSCRIBE to the dialog event package.
pub fn subscribe(s: &Subscribe) -> String {
    let to_tag = s.to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "SUBSCRIBE {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:mware@{local}>;tag={from_tag}\r\n\
         To: <{number}>{to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} SUBSCRIBE\r\n\
         Contact: <sip:mware@{local}>\r\n\
         Event: dialog\r\n\
         Accept: application/dialog-info+xml\r\n\
         Expires: {expires}\r\n\
         User-Agent: mware\r\n\
         Content-Length: 0\r\n\r\n",
        target = s.target,
        local = s.local,
        branch = s.branch,
        from_tag = s.from_tag,
        number = s.number,
        call_id = s.call_id,
        cseq = s.cseq,
        expires = s.expires,
    )
}

/// A response `code reason` to the request `req` (its Via, From, To, Call-ID and CSeq).
pub fn answer(req: &Msg, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for (n, v) in &req.headers {
        let name = match n.as_str() {
            "via" => "Via",
            "from" => "From",
            "to" => "To",
            "call-id" => "Call-ID",
            "cseq" => "CSeq",
            _ => continue,
        };
        out.push_str(&format!("{name}: {v}\r\n"));
    }
    out.push_str("User-Agent: mware\r\nContent-Length: 0\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Kamailio 5.6's NOTIFY, as the presence module sends it (abridged).
    const NOTIFY: &str = "NOTIFY sip:mware@127.0.0.1:25099 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:25080;branch=z9hG4bK42c5.0\r\n\
        To: <sip:mware@127.0.0.1:25099>;tag=w1\r\n\
        From: <sip:201@other.test>;tag=787f-31d7\r\n\
        CSeq: 3 NOTIFY\r\n\
        Call-ID: sub-1\r\n\
        Content-Length: 5\r\n\
        Event: dialog\r\n\
        Contact: <sip:127.0.0.1:25080>\r\n\
        Subscription-State: active;expires=59\r\n\
        Content-Type: application/dialog-info+xml\r\n\r\n<x/>\r\n";

    #[test]
    fn a_notify_is_read() {
        let m = Msg::parse(NOTIFY.as_bytes()).unwrap();
        assert_eq!(m.method.as_deref(), Some("NOTIFY"));
        assert_eq!(m.cseq(), Some((3, "NOTIFY")));
        assert_eq!((m.tag("from"), m.tag("to")), (Some("787f-31d7"), Some("w1")));
        assert_eq!(m.contact_uri(), Some("sip:127.0.0.1:25080"));
        assert_eq!(m.expires(), Some(59));
        assert_eq!(m.body, "<x/>\r");
        let a = answer(&m, 200, "OK");
        assert!(a.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:25080;branch=z9hG4bK42c5.0\r\n"), "{a}");
        assert!(a.contains("\r\nCall-ID: sub-1\r\n") && a.contains("\r\nCSeq: 3 NOTIFY\r\n") && a.ends_with("\r\n\r\n"), "{a}");
    }

    #[test]
    fn responses_and_compact_headers() {
        let m = Msg::parse(b"SIP/2.0 202 Accepted\r\ni: c1\r\nt: <sip:a@b>;tag=x\r\nExpires: 600\r\n\r\n").unwrap();
        assert_eq!((m.method.as_deref(), m.code), (None, 202));
        assert_eq!((m.header("call-id"), m.tag("to"), m.expires()), (Some("c1"), Some("x"), Some(600)));
        assert!(Msg::parse(b"hello").is_none());
        assert!(Msg::parse(b"SIP/2.0 999 Odd\r\n\r\n").is_none());
    }

    #[test]
    fn a_refresh_names_the_dialog() {
        let local: SocketAddr = "127.0.0.1:5090".parse().unwrap();
        let s = subscribe(&Subscribe {
            target: "sip:127.0.0.1:25080",
            number: "sip:201@other.test",
            to_tag: Some("t9"),
            from_tag: "f1",
            call_id: "c1",
            cseq: 2,
            branch: "b2",
            local,
            expires: 600,
        });
        assert!(s.starts_with("SUBSCRIBE sip:127.0.0.1:25080 SIP/2.0\r\n"), "{s}");
        assert!(s.contains("\r\nTo: <sip:201@other.test>;tag=t9\r\n") && s.contains("\r\nCSeq: 2 SUBSCRIBE\r\n"), "{s}");
        let m = Msg::parse(s.as_bytes()).unwrap();
        assert_eq!((m.header("event"), m.expires(), m.contact_uri()), (Some("dialog"), Some(600), Some("sip:mware@127.0.0.1:5090")));
    }
}
