//! The message as G.711 µ-law at 8 kHz (what PCMU RTP carries, 8000 bytes a second), and
//! the SDP of a notification call.
//!
//! Text is spoken by `espeak-ng` (the text on its standard input, never in an argument),
//! and its WAV converted by `sox` (resampled with its filter, µ-law encoded); a WAV file
//! is converted by `sox` too, its path an argument of its own (absolute, so never read
//! as an option). Both are run with argv, no shell, killed at a timeout.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Longest text, in characters.
pub const MAX_TEXT: usize = 1000;
/// Longest message, seconds (a longer WAV is refused).
pub const MAX_SECONDS: u64 = 300;
/// Largest WAV file accepted, bytes.
pub const MAX_WAV_BYTES: u64 = 64 << 20;
/// Bytes of µ-law per second.
pub const RATE: u64 = 8000;
/// The RTP payload type offered for telephone-events (RFC 4733).
pub const TELEPHONE_EVENT_PT: u8 = 101;
/// How long espeak-ng or sox may run.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `text` spoken by espeak-ng, as µ-law 8 kHz.
pub async fn speak(text: &str) -> Result<Vec<u8>, String> {
    let wav = run("espeak-ng", &["--stdout", "--stdin", "-v", "en"], text.as_bytes()).await?;
    to_ulaw(&["-t", "wav", "-"], &wav).await
}

/// The WAV file at `path` (checked with [`check_wav`]) as µ-law 8 kHz.
pub async fn load_wav(path: &str) -> Result<Vec<u8>, String> {
    check_wav(path)?;
    to_ulaw(&["-t", "wav", path], b"").await
}

/// Whether `path` names a readable WAV file: absolute, `.wav`, a regular file of at most
/// [`MAX_WAV_BYTES`], starting with a RIFF/WAVE header.
pub fn check_wav(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if !p.is_absolute() || path.chars().any(char::is_control) || path.len() > 1024 {
        return Err(format!("expected an absolute path of at most 1024 bytes, found {:?}", path.chars().take(80).collect::<String>()));
    }
    if !path.to_ascii_lowercase().ends_with(".wav") {
        return Err(format!("expected a .wav file, found {path:?}"));
    }
    let meta = std::fs::metadata(p).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    if !meta.is_file() || meta.len() > MAX_WAV_BYTES {
        return Err(format!("expected a regular file of at most {MAX_WAV_BYTES} bytes, found {} bytes", meta.len()));
    }
    let mut head = [0u8; 12];
    use std::io::Read;
    std::fs::File::open(p).and_then(|mut f| f.read_exact(&mut head)).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    if &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(format!("expected a WAV file (RIFF/WAVE header), found {:?}", String::from_utf8_lossy(&head[..4])));
    }
    Ok(())
}

/// sox reading `input` (args naming it; `stdin` fed when it reads `-`), writing µ-law.
async fn to_ulaw(input: &[&str], stdin: &[u8]) -> Result<Vec<u8>, String> {
    let mut args: Vec<&str> = vec!["-V1"];
    args.extend_from_slice(input);
    args.extend_from_slice(&["-t", "ul", "-r", "8000", "-c", "1", "-"]);
    let out = run("sox", &args, stdin).await?;
    if out.is_empty() {
        return Err("the message is empty (no audio)".into());
    }
    if out.len() as u64 > MAX_SECONDS * RATE {
        return Err(format!("expected at most {MAX_SECONDS} s of audio, found {} s", out.len() as u64 / RATE));
    }
    Ok(out)
}

/// Runs `prog` with `args` (no shell), `stdin` on its input; its output, or its error.
async fn run(prog: &str, args: &[&str], stdin: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    let mut input = child.stdin.take();
    let data = stdin.to_vec();
    let feed = async move {
        if let Some(i) = input.as_mut() {
            let _ = i.write_all(&data).await;
        }
        drop(input);
    };
    let (_, out) = tokio::time::timeout(TIMEOUT, async { tokio::join!(feed, child.wait_with_output()) })
        .await
        .map_err(|_| format!("{prog} did not finish within {} s", TIMEOUT.as_secs()))?;
    let out = out.map_err(|e| format!("{prog}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{prog} failed ({}): {}", out.status, err.trim().chars().take(200).collect::<String>()));
    }
    Ok(out.stdout)
}

/// Our offer: PCMU and telephone-event from `ip:port`, 20 ms packets.
pub fn offer(ip: &str, port: u16) -> String {
    let te = TELEPHONE_EVENT_PT;
    format!(
        "v=0\r\no=mware {port} 1 IN IP4 {ip}\r\ns=notification\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 {te}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:{te} telephone-event/8000\r\n\
         a=fmtp:{te} 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// What the phone's answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Where its RTP goes.
    pub addr: std::net::SocketAddr,
    /// Its telephone-event payload type, if it accepted them.
    pub telephone_event: Option<u8>,
}

/// Reads the phone's answer: PCMU accepted, its address, the telephone-event type.
pub fn answer(sdp: &str) -> Result<Answer, String> {
    let (ip, port) = crate::conference::pcmu_target(sdp)?;
    let ip: std::net::IpAddr = ip.parse().map_err(|_| format!("the answer's address {ip:?} is not an IP address"))?;
    let telephone_event = sdp.lines().find_map(|l| {
        let (pt, enc) = l.trim().strip_prefix("a=rtpmap:")?.split_once(' ')?;
        enc.to_ascii_lowercase().starts_with("telephone-event/").then(|| pt.parse::<u8>().ok()).flatten()
    });
    Ok(Answer { addr: std::net::SocketAddr::new(ip, port), telephone_event })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_gives_the_address_and_the_telephone_event_type() {
        let a = answer("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n").unwrap();
        assert_eq!(a.addr, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(a.telephone_event, Some(96));
        assert_eq!(answer("c=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n").unwrap().telephone_event, None);
        assert!(answer("c=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 8\r\n").is_err());
        let o = offer("127.0.0.1", 4002);
        assert!(o.contains("m=audio 4002 RTP/AVP 0 101\r\n") && o.contains("telephone-event/8000"), "{o}");
    }

    #[test]
    fn wav_paths_are_checked_before_sox_sees_them() {
        assert!(check_wav("relative.wav").unwrap_err().contains("absolute"));
        assert!(check_wav("/etc/passwd").unwrap_err().contains(".wav"));
        assert!(check_wav("/nonexistent/x.wav").unwrap_err().contains("cannot read"));
        let dir = std::env::temp_dir().join(format!("mware-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("fake.wav");
        std::fs::write(&fake, b"not a wav file at all").unwrap();
        assert!(check_wav(fake.to_str().unwrap()).unwrap_err().contains("RIFF"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn text_is_spoken_into_ulaw_at_8_khz() {
        let ulaw = speak("Hello, this is a test.").await.expect("espeak-ng and sox");
        let secs = ulaw.len() as f64 / RATE as f64;
        assert!((0.8..4.0).contains(&secs), "{secs} s");
        let silent = ulaw.iter().filter(|b| matches!(**b, 0xFF | 0x7F | 0xFE | 0x7E)).count();
        assert!(silent < ulaw.len() * 8 / 10, "mostly speech, not silence");
    }
}
