//! baresip as a real softphone of a test: it registers with the test's Kamailio, answers
//! every call at once (`answermode=auto`), sends a sine tone from a WAV file of its own
//! as its microphone, and records what it hears (the `sndfile` module). Its own numbers
//! tell whether media flowed and where from: at the end of each call it prints
//! `EX=BareSip;…;PR=<packets received>;PS=<packets sent>;…;IP=<local>,<remote>;`, and
//! [`Baresip::heard_hz`] finds the tone in the recording. Driven through its `ctrl_tcp`
//! module (netstring JSON). Its configuration is the one shipped in `examples/baresip/`,
//! with the ports and paths filled in. Stopped by PID when the guard drops.

use crate::proc::{free_port, free_udp_range, Child};
use anyhow::{anyhow, bail, Context};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How many RTP ports each phone gets (`rtp_ports`).
const RTP_SPAN: u16 = 10;

/// One baresip phone.
pub struct Baresip {
    child: Child,
    dir: PathBuf,
    /// Its SIP user (`sip:{user}@{domain}`).
    pub user: String,
    /// Its SIP port on 127.0.0.1 (UDP).
    pub sip_port: u16,
    /// Its `ctrl_tcp` port.
    pub ctrl_port: u16,
    /// Its RTP ports, first and last.
    pub rtp_ports: (u16, u16),
}

/// What a phone said of a call's media when the call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpSummary {
    /// RTP packets received.
    pub received: u64,
    /// RTP packets sent.
    pub sent: u64,
    /// The RTP address the packets came from (`127.0.0.1:20026`).
    pub remote: String,
}

impl Baresip {
    /// Starts a phone `user@domain` in a folder of its own under `dir`, registered through
    /// the proxy on 127.0.0.1:`proxy_port` (UDP), sending a `tone_hz` sine (0: silence);
    /// waits until the registrar has answered 200.
    pub fn start(dir: &Path, user: &str, domain: &str, proxy_port: u16, tone_hz: u32) -> anyhow::Result<Baresip> {
        let dir = dir.join(format!("baresip-{user}"));
        std::fs::create_dir_all(&dir)?;
        let sip_port = pair_port();
        let ctrl_port = free_port();
        let rtp = free_udp_range(RTP_SPAN);
        write_tone(&dir.join("tone.wav"), tone_hz, 60)?;
        let fill = |template: &str| {
            let text = std::fs::read_to_string(examples().join(template)).with_context(|| format!("examples/baresip/{template}"))?;
            let d = dir.display().to_string();
            let vals = [
                ("{SIP_PORT}", sip_port.to_string()),
                ("{RTP_FIRST}", rtp.0.to_string()),
                ("{RTP_LAST}", rtp.1.to_string()),
                ("{DIR}", d),
                ("{USER}", user.to_string()),
                ("{DOMAIN}", domain.to_string()),
                ("{CTRL_PORT}", ctrl_port.to_string()),
                ("{PROXY_PORT}", proxy_port.to_string()),
            ];
            let filled = vals.iter().fold(text, |t, (k, v)| t.replace(k, v));
            std::fs::write(dir.join(template), filled).map_err(anyhow::Error::from)
        };
        fill("config")?;
        fill("accounts")?;
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(&dir).current_dir(&dir);
        let child = Child::spawn(&format!("baresip-{user}"), cmd, &dir.join("out.log"))?;
        let phone = Baresip { child, dir, user: user.into(), sip_port, ctrl_port, rtp_ports: rtp };
        phone.wait_log(&format!("{user}@{domain}: {{0/UDP/v4}} 200 OK"), Duration::from_secs(10)).context("registration")?;
        Ok(phone)
    }

    /// What the phone printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("out.log")).unwrap_or_default()
    }

    /// Waits until the phone has printed `what`.
    pub fn wait_log(&self, what: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(what) {
            if Instant::now() > deadline {
                bail!("baresip {} did not print {what:?} within {timeout:?}:\n{}", self.user, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Sends a `ctrl_tcp` command (`dial`, `hangup`, …); the response's `data`.
    pub fn command(&self, command: &str, params: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({"command": command, "params": params, "token": "t"}).to_string();
        let mut s = TcpStream::connect(("127.0.0.1", self.ctrl_port))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        write!(s, "{}:{body},", body.len())?;
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            // Netstrings of events and of the response; the response has "response":true.
            if let Some(data) = response_data(&got) {
                return Ok(data);
            }
        }
        Err(anyhow!("no response to {command}: {}", String::from_utf8_lossy(&got)))
    }

    /// The media summary of every call that ended, oldest first (built from RTCP: a
    /// peer that sends none, such as Janus's plain RTP participants, leaves none).
    pub fn summaries(&self) -> Vec<RtpSummary> {
        self.log().lines().filter_map(|l| l.find("EX=BareSip;").map(|i| &l[i..])).filter_map(parse_summary).collect()
    }

    /// Waits for the summary of the `n`-th ended call (1-based).
    pub fn wait_summary(&self, n: usize, timeout: Duration) -> anyhow::Result<RtpSummary> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.summaries().into_iter().nth(n - 1) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!("baresip {}: no media summary of call {n} within {timeout:?}:\n{}", self.user, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The frequency of the tone in the middle second of the newest recording of what
    /// the phone heard, by counting zero crossings (None: no recording, or silence).
    pub fn heard_hz(&self) -> Option<f64> {
        let (rate, samples) = self.recording()?;
        let mid = samples.len() / 2;
        let half = rate as usize / 2;
        tone_hz(rate, &samples[mid.saturating_sub(half)..(mid + half).min(samples.len())])
    }

    /// The same for the last second recorded so far (the call may still be up).
    pub fn heard_hz_last(&self) -> Option<f64> {
        let (rate, samples) = self.recording()?;
        tone_hz(rate, &samples[samples.len().saturating_sub(rate as usize)..])
    }

    /// The newest recording of what the phone heard.
    fn recording(&self) -> Option<(u32, Vec<i16>)> {
        let mut decs: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("dump-") && n.ends_with("-dec.wav")))
            .collect();
        decs.sort();
        read_wav(decs.last()?).ok()
    }
}

/// The frequency of the tone in `window` (at least half a second of it), by counting
/// zero crossings; None for silence.
pub fn tone_hz(rate: u32, window: &[i16]) -> Option<f64> {
    if window.len() < rate as usize / 2 || window.iter().all(|s| s.unsigned_abs() < 500) {
        return None;
    }
    let crossings = window.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    Some(crossings as f64 / 2.0 / (window.len() as f64 / f64::from(rate)))
}

/// The `data` of the `ctrl_tcp` response among the netstrings received so far.
fn response_data(got: &[u8]) -> Option<String> {
    let mut rest = got;
    while let Some(colon) = rest.iter().position(|&b| b == b':') {
        let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
        let body = rest.get(colon + 1..colon + 1 + len)?;
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        if v["response"] == true {
            return Some(v["data"].as_str().unwrap_or_default().to_string());
        }
        rest = rest.get(colon + 2 + len..)?;
    }
    None
}

/// `EX=BareSip;CS=0;CD=6;PR=250;PS=250;…;IP=0.0.0.0:20002,127.0.0.1:20026;`
fn parse_summary(line: &str) -> Option<RtpSummary> {
    let field = |k: &str| line.split(';').find_map(|f| f.strip_prefix(k)).map(str::to_string);
    Some(RtpSummary {
        received: field("PR=")?.parse().ok()?,
        sent: field("PS=")?.parse().ok()?,
        remote: field("IP=")?.split(',').nth(1)?.to_string(),
    })
}

/// `examples/baresip`: the phone's configuration as shipped, with placeholders.
fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/baresip")
}

/// A SIP port whose next port is free too (baresip listens for TLS on port + 1).
fn pair_port() -> u16 {
    loop {
        let p = free_port();
        let ok = p < u16::MAX
            && UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && TcpListener::bind(("127.0.0.1", p)).is_ok()
            && TcpListener::bind(("127.0.0.1", p + 1)).is_ok();
        if ok {
            return p;
        }
    }
}

/// Writes `secs` seconds of a `hz` sine as 8 kHz mono 16-bit PCM WAV.
fn write_tone(path: &Path, hz: u32, secs: u32) -> std::io::Result<()> {
    let rate = 8000u32;
    let n = rate * secs;
    let mut out = Vec::with_capacity(44 + 2 * n as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(2 * n).to_le_bytes());
    for i in 0..n {
        let s = (f64::from(i) * f64::from(hz) * std::f64::consts::TAU / f64::from(rate)).sin() * 8000.0;
        out.extend_from_slice(&(s as i16).to_le_bytes());
    }
    std::fs::File::create(path)?.write_all(&out)
}

/// The sample rate and the samples of a 16-bit mono PCM WAV file (a file still being
/// written: every sample so far).
pub fn read_wav(path: &Path) -> anyhow::Result<(u32, Vec<i16>)> {
    let b = std::fs::read(path)?;
    let mut at = 12;
    let mut rate = 0u32;
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let len = u32::from_le_bytes(b[at + 4..at + 8].try_into()?) as usize;
        let body = &b[at + 8..(at + 8 + len).min(b.len())];
        if id == b"fmt " && body.len() >= 8 {
            rate = u32::from_le_bytes(body[4..8].try_into()?);
        }
        if id == b"data" {
            // A recording still being written may not have its length in the header yet:
            // the samples are what follows, up to the end of the file.
            let body = &b[at + 8..];
            return Ok((rate, body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect()));
        }
        at += 8 + len + (len & 1);
    }
    bail!("{}: no data chunk", path.display())
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.child.kill9();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_summary_line_is_read() {
        let s =
            super::parse_summary("EX=BareSip;CS=0;CD=6;PR=250;PS=251;PL=0,0;PD=0,0;JI=8.0,7.1;DL=0.0;IP=0.0.0.0:20002,127.0.0.1:20026;");
        assert_eq!(s, Some(super::RtpSummary { received: 250, sent: 251, remote: "127.0.0.1:20026".into() }));
    }

    #[test]
    fn a_tone_written_is_heard_at_its_frequency() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.wav");
        super::write_tone(&p, 440, 2).unwrap();
        let (rate, s) = super::read_wav(&p).unwrap();
        assert_eq!((rate, s.len()), (8000, 16000));
        let crossings = s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!((crossings as f64 / 4.0 - 440.0).abs() < 5.0, "{crossings}");
    }
}
