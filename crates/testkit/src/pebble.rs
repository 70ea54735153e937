//! pebble for tests: Let's Encrypt's test CA (Debian `pebble`) on free loopback ports,
//! with `pebble-challtestsrv` (same package) as its DNS server so every name resolves to
//! 127.0.0.1, or a DNS server the test gives (BIND for DNS-01). The HTTPS certificate of
//! pebble's own listeners is made here with `openssl` (a CA and a leaf for 127.0.0.1);
//! [`Pebble::ca_file`] is that CA, what a client trusts to reach the directory.
//!
//! `PEBBLE_VA_ALWAYS_VALID=0` (challenges are really checked) and `PEBBLE_VA_NOSLEEP=1`
//! (no random sleep before a check) are always set; the nonce rejection rate, the
//! certificates' validity and the authorization reuse are options. Every request pebble
//! serves is in its log ([`Pebble::log_text`], [`Pebble::count`]).

use crate::proc::{free_port, wait_for_port, Child};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How pebble runs.
#[derive(Debug, Clone)]
pub struct PebbleOpts {
    /// The port pebble connects to on 127.0.0.1 for HTTP-01 (where the client answers).
    pub http_port: u16,
    /// Percentage of nonces pebble refuses (`PEBBLE_WFE_NONCEREJECT`).
    pub nonce_reject: u32,
    /// Validity of issued certificates, seconds (pebble's default: 5 years).
    pub validity_s: Option<u64>,
    /// Percentage of authorizations reused (`PEBBLE_AUTHZREUSE`; 0: each order validates).
    pub authz_reuse: u32,
    /// The DNS server pebble asks (`None`: a pebble-challtestsrv started here answering
    /// 127.0.0.1 for every A query).
    pub dns: Option<String>,
}

impl PebbleOpts {
    /// HTTP-01 on `http_port`, no nonce rejections, default validity, no reuse.
    pub fn new(http_port: u16) -> Self {
        PebbleOpts { http_port, nonce_reject: 0, validity_s: None, authz_reuse: 0, dns: None }
    }
}

/// A running pebble (and its DNS server) owned by a test.
pub struct Pebble {
    /// `https://127.0.0.1:PORT/dir`.
    pub directory: String,
    /// The CA of pebble's HTTPS certificate (PEM file).
    pub ca_file: PathBuf,
    /// `https://127.0.0.1:PORT`: the management interface (roots, intermediates).
    pub management: String,
    /// The log file (stdout and stderr).
    pub log: PathBuf,
    /// pebble's PID.
    pub pid: i32,
    pebble: Child,
    _dns: Option<Child>,
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl").current_dir(dir).args(args).output()?;
    anyhow::ensure!(out.status.success(), "openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// A CA (`ca.pem`) and a leaf for 127.0.0.1 and localhost (`cert.pem`, `key.pem`) in `dir`.
pub fn make_tls(dir: &Path) -> anyhow::Result<()> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=mware test CA",
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    )?;
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
        ],
    )
}

impl Pebble {
    /// Starts pebble (and, unless `opts.dns` names one, a challtestsrv DNS server); waits
    /// until its directory answers.
    pub fn start(opts: &PebbleOpts) -> anyhow::Result<Pebble> {
        let dir = tempfile::Builder::new().prefix("mware-pebble-").tempdir()?;
        make_tls(dir.path())?;
        let (dns, dns_child) = match &opts.dns {
            Some(d) => (d.clone(), None),
            None => {
                let port = free_port();
                let mut cmd = Command::new("pebble-challtestsrv");
                cmd.args(["-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv6", "", "-defaultIPv4", "127.0.0.1"]);
                cmd.args(["-dns01", &format!("127.0.0.1:{port}"), "-management", &format!("127.0.0.1:{}", free_port())]);
                let c = Child::spawn("pebble-challtestsrv", cmd, &dir.path().join("challtestsrv.log"))?;
                wait_udp_dns(port)?;
                (format!("127.0.0.1:{port}"), Some(c))
            }
        };
        let (port, mport) = (free_port(), free_port());
        let mut conf = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"), "managementListenAddress": format!("127.0.0.1:{mport}"),
            "certificate": dir.path().join("cert.pem"), "privateKey": dir.path().join("key.pem"),
            "httpPort": opts.http_port, "tlsPort": free_port(), "ocspResponderURL": "", "externalAccountBindingRequired": false,
        }});
        if let Some(v) = opts.validity_s {
            conf["pebble"]["certificateValidityPeriod"] = v.into();
        }
        let conf_path = dir.path().join("pebble.json");
        std::fs::write(&conf_path, conf.to_string())?;
        let mut cmd = Command::new("pebble");
        cmd.arg("-config").arg(&conf_path).arg("-dnsserver").arg(&dns);
        cmd.env("PEBBLE_VA_ALWAYS_VALID", "0").env("PEBBLE_VA_NOSLEEP", "1");
        cmd.env("PEBBLE_WFE_NONCEREJECT", opts.nonce_reject.to_string()).env("PEBBLE_AUTHZREUSE", opts.authz_reuse.to_string());
        let log = dir.path().join("pebble.log");
        let pebble = Child::spawn("pebble", cmd, &log)?;
        if let Err(e) = wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(20)) {
            anyhow::bail!("{e}; pebble log: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        wait_for_port(&format!("127.0.0.1:{mport}"), Duration::from_secs(20))?;
        Ok(Pebble {
            directory: format!("https://127.0.0.1:{port}/dir"),
            ca_file: dir.path().join("ca.pem"),
            management: format!("https://127.0.0.1:{mport}"),
            log,
            pid: pebble.pid(),
            pebble,
            _dns: dns_child,
            dir,
        })
    }

    /// pebble's root (the issuing chain's anchor), from its management interface, PEM.
    pub fn root_pem(&self) -> anyhow::Result<String> {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "10", "--cacert"])
            .arg(&self.ca_file)
            .arg(format!("{}/roots/0", self.management))
            .output()?;
        anyhow::ensure!(out.status.success(), "curl roots/0: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8(out.stdout)?)
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many log lines contain `needle` (pebble logs each request it serves:
    /// `"Added order"` counts the orders created; `"POST /order-plz"` counts requests,
    /// a refused nonce included).
    pub fn count(&self, needle: &str) -> usize {
        self.log_text().lines().filter(|l| l.contains(needle)).count()
    }

    /// The temp folder (for files a test wants beside pebble's).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// kill -9 of pebble (its DNS server stays).
    pub fn kill9(&mut self) {
        self.pebble.kill9();
    }
}

/// Waits until a DNS server answers on UDP `127.0.0.1:port` (a query for `.` NS).
fn wait_udp_dns(port: u16) -> anyhow::Result<()> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let query = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let _ = sock.send_to(&query, ("127.0.0.1", port));
        let mut buf = [0u8; 512];
        if sock.recv_from(&mut buf).is_ok() {
            return Ok(());
        }
    }
    anyhow::bail!("no DNS answer on 127.0.0.1:{port} within 20 s")
}
