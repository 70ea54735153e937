//! The few SDP edits a controller makes to a session it does not terminate: a new
//! direction (hold is `sendonly`, resume `sendrecv`, RFC 3264 §8.4) with the origin's
//! version raised, as a changed offer must.

/// `sdp` with every `a=sendrecv|sendonly|recvonly|inactive` replaced by `a={dir}` (or
/// one added at session level when it had none) and the `o=` version raised by `bump`.
pub fn with_direction(sdp: &str, dir: &str, bump: u64) -> String {
    let mut out = String::with_capacity(sdp.len() + 16);
    let mut had = false;
    let mut added = false;
    let lines: Vec<&str> = sdp.lines().collect();
    let has_dir = lines.iter().any(|l| is_dir(l));
    for l in &lines {
        if is_dir(l) {
            had = true;
            out.push_str(&format!("a={dir}\r\n"));
            continue;
        }
        if let Some(o) = l.strip_prefix("o=") {
            out.push_str(&format!("o={}\r\n", bump_origin(o, bump)));
            continue;
        }
        // Without any direction attribute, add one at session level, before the first m=.
        if !has_dir && !added && l.starts_with("m=") {
            out.push_str(&format!("a={dir}\r\n"));
            added = true;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    if !has_dir && !added && !had {
        out.push_str(&format!("a={dir}\r\n"));
    }
    out
}

fn is_dir(l: &str) -> bool {
    matches!(l.trim_end(), "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive")
}

/// `username sess-id sess-version nettype addrtype address` with the version raised.
fn bump_origin(o: &str, bump: u64) -> String {
    let mut f: Vec<String> = o.split_whitespace().map(str::to_string).collect();
    if f.len() >= 3 {
        if let Ok(v) = f[2].parse::<u64>() {
            f[2] = v.saturating_add(bump).to_string();
        }
    }
    f.join(" ")
}

/// An answer to `offer` that refuses every stream (each `m=` with port 0, RFC 3264 §6):
/// what a controller sends when it must answer an offer it cannot connect anywhere.
pub fn refuse(offer: &str) -> String {
    let mut out = String::new();
    for l in offer.lines() {
        let l = l.trim_end();
        if let Some(m) = l.strip_prefix("m=") {
            let mut f: Vec<&str> = m.split_whitespace().collect();
            if f.len() >= 2 {
                f[1] = "0";
            }
            out.push_str(&format!("m={}\r\n", f.join(" ")));
        } else if l.starts_with("v=") || l.starts_with("o=") || l.starts_with("s=") || l.starts_with("t=") {
            out.push_str(l);
            out.push_str("\r\n");
        } else if l.starts_with("c=") {
            out.push_str("c=IN IP4 0.0.0.0\r\n");
        }
    }
    if out.is_empty() {
        out.push_str("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_and_resume_change_direction_and_raise_the_version() {
        let sdp = "v=0\r\no=- 1 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
        let held = with_direction(sdp, "sendonly", 1);
        assert!(held.contains("o=- 1 6 IN IP4 127.0.0.1\r\n"), "{held}");
        assert!(held.contains("a=sendonly\r\nm=audio"), "{held}");
        let resumed = with_direction(&held, "sendrecv", 1);
        assert!(resumed.contains("a=sendrecv\r\n") && !resumed.contains("sendonly"), "{resumed}");
        assert!(resumed.contains("o=- 1 7 "), "{resumed}");
        let no = refuse(sdp);
        assert!(no.contains("m=audio 0 RTP/AVP 0\r\n") && no.contains("c=IN IP4 0.0.0.0"), "{no}");
    }
}
