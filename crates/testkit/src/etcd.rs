//! A real etcd (`/usr/bin/etcd`, 3.4) for tests: one member on free loopback
//! ports with its own temporary data directory, killed by PID on drop.
//!
//! `stop()` / `restart()` keep the data directory and the ports, so a test can
//! restart etcd under running clients; `kill9()` kills it without a clean stop.
//!
//! `start_tls()` serves clients on `https://127.0.0.1:<port>` with a throwaway CA made
//! by `openssl` (see [`TestCerts`]) and requires a client certificate signed by it.

use crate::proc::{free_port, wait_for_port, Child};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running (or stopped) single-member etcd owned by a test.
pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    tls: Option<TestCerts>,
}

/// PEM files of a throwaway PKI made by `openssl` for one test etcd: a CA, a server
/// certificate for `127.0.0.1`/`localhost`, and a client certificate, all signed by the CA.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// CA certificate.
    pub ca: PathBuf,
    /// Server certificate (subjectAltName IP:127.0.0.1, DNS:localhost).
    pub server_cert: PathBuf,
    /// Server key.
    pub server_key: PathBuf,
    /// Client certificate (CN `mware-test-client`).
    pub client_cert: PathBuf,
    /// Client key.
    pub client_key: PathBuf,
}

fn openssl(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("/usr/bin/openssl").args(args).output()?;
    if !out.status.success() {
        anyhow::bail!("openssl {} failed: {}", args.first().unwrap_or(&""), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Makes a self-signed CA (`<name>.crt`, `<name>.key`, EC P-256, valid one day) in `dir`.
pub fn make_ca(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let (crt, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let subj = format!("/CN={name}");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        path_str(&key)?,
        "-out",
        path_str(&crt)?,
        "-days",
        "1",
        "-subj",
        &subj,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ])?;
    Ok((crt, key))
}

/// Makes a key and a certificate signed by the CA `(ca_crt, ca_key)` in `dir`
/// (`<name>.crt`, `<name>.key`), with the given X.509 v3 extension lines.
pub fn make_cert(dir: &Path, name: &str, ca: (&Path, &Path), ext: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (crt, key, csr, extf) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(&extf, ext)?;
    let subj = format!("/CN={name}");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        path_str(&key)?,
        "-out",
        path_str(&csr)?,
        "-subj",
        &subj,
    ])?;
    let serial = format!("0x{:016x}", rand_u64());
    openssl(&[
        "x509",
        "-req",
        "-in",
        path_str(&csr)?,
        "-CA",
        path_str(ca.0)?,
        "-CAkey",
        path_str(ca.1)?,
        "-set_serial",
        &serial,
        "-days",
        "1",
        "-extfile",
        path_str(&extf)?,
        "-out",
        path_str(&crt)?,
    ])?;
    Ok((crt, key))
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().ok_or_else(|| anyhow::anyhow!("expected a UTF-8 path, found {}", p.display()))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish() >> 1
}

impl TestCerts {
    /// Makes the CA, server and client certificates in `dir`.
    pub fn make(dir: &Path) -> anyhow::Result<TestCerts> {
        let (ca, ca_key) = make_ca(dir, "mware-test-ca")?;
        let (server_cert, server_key) = make_cert(
            dir,
            "localhost",
            (&ca, &ca_key),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )?;
        let (client_cert, client_key) = make_cert(
            dir,
            "mware-test-client",
            (&ca, &ca_key),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
        )?;
        Ok(TestCerts { ca, server_cert, server_key, client_cert, client_key })
    }
}

impl Etcd {
    /// Starts etcd on free loopback ports with a fresh data directory and waits until it
    /// answers.
    pub fn start() -> anyhow::Result<Etcd> {
        let dir = tempfile::Builder::new().prefix("mware-etcd-").tempdir()?;
        let mut e = Etcd { child: None, dir, client_port: free_port(), peer_port: free_port(), tls: None };
        e.spawn()?;
        Ok(e)
    }

    /// Starts etcd serving clients over TLS on `https://127.0.0.1:<port>` with
    /// `--client-cert-auth`: only clients with a certificate signed by [`Etcd::certs`]'s
    /// CA are let in. The certificates are made fresh in the data directory's parent.
    pub fn start_tls() -> anyhow::Result<Etcd> {
        let dir = tempfile::Builder::new().prefix("mware-etcd-tls-").tempdir()?;
        let certs = TestCerts::make(&dir.path().join("pki"))?;
        let mut e = Etcd { child: None, dir, client_port: free_port(), peer_port: free_port(), tls: Some(certs) };
        e.spawn()?;
        Ok(e)
    }

    /// The certificates of a TLS etcd (`None` for a plain one).
    pub fn certs(&self) -> Option<&TestCerts> {
        self.tls.as_ref()
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = Command::new("/usr/bin/etcd");
        cmd.arg("--name")
            .arg("test")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("test={peer}"))
            .arg("--log-level")
            .arg("warn");
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.server_cert)
                .arg("--key-file")
                .arg(&t.server_key)
                .arg("--trusted-ca-file")
                .arg(&t.ca)
                .arg("--client-cert-auth");
        }
        // etcd 3.4 refuses to start on architectures other than amd64 (and arm64 since
        // 3.5) unless told to; amd64 needs nothing.
        if std::env::consts::ARCH != "x86_64" {
            cmd.env("ETCD_UNSUPPORTED_ARCH", std::env::consts::ARCH.replace("aarch64", "arm64"));
        }
        let log = self.dir.path().join("etcd.log");
        self.child = Some(Child::spawn("etcd", cmd, &log)?);
        wait_for_port(&format!("127.0.0.1:{}", self.client_port), Duration::from_secs(20))?;
        self.wait_healthy(Duration::from_secs(20))
    }

    /// Whether etcd serves `/health` with `"health":"true"` over TLS (asked with curl and
    /// the client certificate).
    fn healthy_tls(&self, t: &TestCerts) -> bool {
        let out = Command::new("/usr/bin/curl")
            .arg("-s")
            .arg("--max-time")
            .arg("2")
            .arg("--cacert")
            .arg(&t.ca)
            .arg("--cert")
            .arg(&t.client_cert)
            .arg("--key")
            .arg(&t.client_key)
            .arg(format!("{}/health", self.endpoint()))
            .output();
        out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("\"health\":\"true\""))
    }

    /// Waits until etcd serves `/health` with `"health":"true"`.
    fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        use std::io::{Read, Write};
        let deadline = std::time::Instant::now() + timeout;
        let addr = format!("127.0.0.1:{}", self.client_port);
        while std::time::Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if !c.is_running() {
                    anyhow::bail!("etcd exited during start; see {}", self.log_path().display());
                }
            }
            if let Some(t) = &self.tls {
                if self.healthy_tls(t) {
                    return Ok(());
                }
            } else if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n");
                let mut body = String::new();
                if s.write_all(req.as_bytes()).is_ok() && s.read_to_string(&mut body).is_ok() && body.contains("\"health\":\"true\"") {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("etcd did not report healthy within {timeout:?}; see {}", self.log_path().display())
    }

    /// The client URL, e.g. `http://127.0.0.1:23791` (`https://` for a TLS etcd).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The client port.
    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    /// The data directory (kept across `stop`/`restart`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// etcd's own log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// The PID of the running etcd, if running.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.pid())
    }

    /// Stops etcd cleanly (SIGTERM, then SIGKILL after 10 s), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.signal(libc::SIGTERM);
            if c.wait_timeout(Duration::from_secs(10)).is_none() {
                c.kill9();
            }
        }
    }

    /// Kills etcd with SIGKILL, keeping its data.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill9();
        }
    }

    /// Starts etcd again on the same ports with the same data (stops it first if running).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill9();
    }
}
