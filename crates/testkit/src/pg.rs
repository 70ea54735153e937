//! PostgreSQL 15 instances for tests, set up for streaming replication as the seed's
//! "Настройка PostgreSQL" section says.
//!
//! Each [`PgInstance`] lives in its own temp dir owned by the `postgres` OS user
//! (PostgreSQL refuses to run as root, so every server-side command runs through
//! `runuser -u postgres --`), listens on its own free port on 127.0.0.1 and keeps its
//! unix socket in the temp dir. The postmaster is not a child of the test: it is
//! found through `postmaster.pid`, and `kill9` kills exactly that PID. Dropping the
//! instance stops it (`pg_ctl stop -m immediate`) and removes the dir.

use crate::proc::free_port;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Binaries of the installed PostgreSQL.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The replication user every test instance has.
pub const REPLICA_USER: &str = "replica";
/// Its password (scram-sha-256 over TCP).
pub const REPLICA_PASSWORD: &str = "mware-test-replica-pw";

/// A PostgreSQL server owned by a test.
pub struct PgInstance {
    /// Name, also its `cluster_name`.
    pub name: String,
    /// The temp dir (owned by postgres).
    pub root: PathBuf,
    /// Data folder (`root/data`).
    pub data: PathBuf,
    /// Server log (`pg_ctl -l`).
    pub log: PathBuf,
    /// A folder for moved-away data folders (`root/backups`).
    pub backups: PathBuf,
    /// Port on 127.0.0.1.
    pub port: u16,
    dir: Option<tempfile::TempDir>,
}

/// Path of a PostgreSQL binary.
pub fn bin(name: &str) -> String {
    format!("{PG_BIN}/{name}")
}

fn as_postgres(program: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--", program]);
    c
}

fn run(mut c: Command, what: &str) -> anyhow::Result<Output> {
    let out = c.output().map_err(|e| anyhow::anyhow!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        anyhow::bail!("{what} failed ({}): {}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(out)
}

fn chown_postgres(p: &Path) -> anyhow::Result<()> {
    let st = Command::new("chown").arg("-R").arg("postgres:postgres").arg(p).status()?;
    anyhow::ensure!(st.success(), "chown postgres {} failed", p.display());
    Ok(())
}

impl PgInstance {
    fn layout(name: &str) -> anyhow::Result<PgInstance> {
        let dir = tempfile::Builder::new().prefix("mware-pgtest-").tempdir_in("/tmp")?;
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("sock"))?;
        std::fs::create_dir_all(root.join("backups"))?;
        chown_postgres(&root)?;
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        Ok(PgInstance {
            name: name.to_string(),
            data: root.join("data"),
            log: root.join("pg.log"),
            backups: root.join("backups"),
            root,
            port: free_port(),
            dir: Some(dir),
        })
    }

    /// The settings that make this instance itself (appended last, so they win).
    fn own_settings(&self) -> String {
        format!(
            "\n# mware testkit: this instance\nlisten_addresses = '127.0.0.1'\nport = {}\n\
             unix_socket_directories = '{}'\ncluster_name = '{}'\n",
            self.port,
            self.root.join("sock").display(),
            self.name
        )
    }

    /// `initdb` a new primary, configure replication, start it and create the replica user.
    pub fn new_primary(name: &str) -> anyhow::Result<PgInstance> {
        let pg = Self::layout(name)?;
        let mut c = as_postgres(&bin("initdb"));
        c.args(["-D"]).arg(&pg.data).args(["-U", "postgres", "-A", "trust", "--no-sync"]);
        run(c, "initdb")?;
        let conf = "\n# mware testkit: replication (seed: Настройка PostgreSQL)\nwal_level = replica\n\
             max_wal_senders = 10\nhot_standby = on\nwal_keep_size = 256MB\nwal_log_hints = on\n\
             fsync = off\nshared_buffers = 16MB\nmax_connections = 40\n";
        append(&pg.data.join("postgresql.conf"), &format!("{conf}{}", pg.own_settings()))?;
        std::fs::write(
            pg.data.join("pg_hba.conf"),
            format!(
                "local all all trust\nhost all postgres 127.0.0.1/32 trust\n\
                 host replication {REPLICA_USER} 127.0.0.1/32 scram-sha-256\n\
                 host all {REPLICA_USER} 127.0.0.1/32 scram-sha-256\n"
            ),
        )?;
        chown_postgres(&pg.data)?;
        pg.start()?;
        pg.psql(&format!(
            "CREATE ROLE {REPLICA_USER} WITH LOGIN REPLICATION CONNECTION LIMIT 20 PASSWORD '{REPLICA_PASSWORD}'; \
             GRANT pg_monitor TO {REPLICA_USER};"
        ))?;
        pg.psql(&rewind_grants(REPLICA_USER))?;
        Ok(pg)
    }

    /// A standby of `primary` made with `pg_basebackup -R`, with its own port, socket and
    /// cluster name; started.
    pub fn new_standby(name: &str, primary: &PgInstance) -> anyhow::Result<PgInstance> {
        let pg = Self::layout(name)?;
        let mut c = as_postgres(&bin("pg_basebackup"));
        c.arg("-D").arg(&pg.data);
        c.args(["-h", "127.0.0.1", "-p", &primary.port.to_string(), "-U", REPLICA_USER]);
        c.args(["-X", "stream", "-c", "fast", "-R", "-w"]);
        c.env("PGPASSWORD", REPLICA_PASSWORD);
        run(c, "pg_basebackup")?;
        append(&pg.data.join("postgresql.conf"), &pg.own_settings())?;
        chown_postgres(&pg.data)?;
        pg.start()?;
        Ok(pg)
    }

    /// `pg_ctl start -w`.
    pub fn start(&self) -> anyhow::Result<()> {
        let mut c = as_postgres(&bin("pg_ctl"));
        c.arg("start").arg("-D").arg(&self.data).arg("-l").arg(&self.log).args(["-w", "-t", "120"]);
        run(c, &format!("pg_ctl start {}", self.name)).map_err(|e| anyhow::anyhow!("{e}; log: {}", self.log_tail()))?;
        Ok(())
    }

    /// `pg_ctl stop -m fast`.
    pub fn stop(&self) -> anyhow::Result<()> {
        let mut c = as_postgres(&bin("pg_ctl"));
        c.arg("stop").arg("-D").arg(&self.data).args(["-m", "fast", "-w", "-t", "120"]);
        run(c, &format!("pg_ctl stop {}", self.name))?;
        Ok(())
    }

    /// `pg_ctl promote -w`: makes a standby a master (used to set up "two masters").
    pub fn promote(&self) -> anyhow::Result<()> {
        let mut c = as_postgres(&bin("pg_ctl"));
        c.arg("promote").arg("-D").arg(&self.data).args(["-w", "-t", "120"]);
        run(c, &format!("pg_ctl promote {}", self.name))?;
        Ok(())
    }

    /// PID of the postmaster, from `postmaster.pid`, if the file exists.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// kill -9 the postmaster and wait (up to 30 s) until it and its children are gone.
    pub fn kill9(&self) -> anyhow::Result<()> {
        let pid = self.postmaster_pid().ok_or_else(|| anyhow::anyhow!("{} has no postmaster.pid", self.name))?;
        let children = children_of(pid);
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !alive(pid) && children.iter().all(|c| !alive(*c)) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!("postmaster {pid} of {} or its children still alive 30 s after kill -9", self.name)
    }

    /// True while the postmaster of `postmaster.pid` is alive.
    pub fn is_running(&self) -> bool {
        self.postmaster_pid().map(alive).unwrap_or(false)
    }

    /// Runs SQL as `postgres` over the unix socket; returns unaligned tuples-only output.
    /// Turns TLS on (a certificate for 127.0.0.1 and localhost signed by a CA made in
    /// `dir`) and refuses every TCP connection without TLS; restarts the server. Returns
    /// the CA's certificate file.
    pub fn enable_tls(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let (ca, ca_key) = crate::etcd::make_ca(dir, "pg-ca")?;
        let (crt, key) = crate::etcd::make_cert(
            dir,
            "pg-server",
            (&ca, &ca_key),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )?;
        self.stop()?;
        std::fs::copy(&crt, self.data.join("server.crt"))?;
        std::fs::copy(&key, self.data.join("server.key"))?;
        std::fs::set_permissions(self.data.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let mut conf = std::fs::OpenOptions::new().append(true).open(self.data.join("postgresql.conf"))?;
        std::io::Write::write_all(&mut conf, b"\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")?;
        std::fs::write(
            self.data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )?;
        let st = std::process::Command::new("chown").args(["-R", "postgres:postgres"]).arg(&self.data).status()?;
        anyhow::ensure!(st.success(), "chown of {} failed", self.data.display());
        self.start()?;
        Ok(ca)
    }

    pub fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let mut c = as_postgres(&bin("psql"));
        c.arg("-h").arg(self.root.join("sock"));
        c.args(["-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        let out = run(c, &format!("psql on {}", self.name))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `SELECT pg_is_in_recovery()`.
    pub fn in_recovery(&self) -> anyhow::Result<bool> {
        Ok(self.psql("SELECT pg_is_in_recovery()")? == "t")
    }

    /// The last lines of the server log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Entries of the backups folder.
    pub fn backup_entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.backups)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    /// Keeps the temp dir after drop (for post-mortem); the server is still stopped.
    pub fn keep_dir(&mut self) {
        if let Some(d) = self.dir.take() {
            let _ = d.keep();
        }
    }
}

impl Drop for PgInstance {
    fn drop(&mut self) {
        if self.is_running() {
            let mut c = as_postgres(&bin("pg_ctl"));
            c.arg("stop").arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "-t", "30"]);
            let _ = c.output();
            if let Some(pid) = self.postmaster_pid() {
                if alive(pid) {
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
    }
}

/// What a non-superuser needs to be pg_rewind's source (PostgreSQL docs, pg_rewind), plus
/// `pg_checkpoint` so the controller can checkpoint a freshly promoted source first.
/// (`wal_log_hints = on`, the target's requirement, is in every instance's config.)
pub fn rewind_grants(user: &str) -> String {
    format!(
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO {user}; \
         GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO {user}; \
         GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO {user}; \
         GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO {user}; \
         GRANT pg_checkpoint TO {user};"
    )
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().and_then(|r| r.split_whitespace().next()).unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(d) = std::fs::read_dir("/proc") {
        for e in d.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                let ppid = s.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|x| x.parse().ok());
                if ppid == Some(pid) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// The `pg_controller` server entry (site file JSON) for `pg`, reached over `sshd` as the
/// postgres OS user with the test password, using the test replica user.
pub fn controller_server_json(pg: &PgInstance, sshd: &crate::sshd::Sshd) -> serde_json::Value {
    serde_json::json!({
        "ssh_host": "127.0.0.1", "ssh_port": sshd.port, "ssh_user": crate::sshd::SSH_USER, "ssh_pwd": crate::sshd::SSH_PASSWORD,
        "pg_host": "127.0.0.1", "pg_port": pg.port, "pg_replica_user": REPLICA_USER,
        "pg_replica_pwd": REPLICA_PASSWORD, "pg_database": "postgres",
        "pg_ctl_command": bin("pg_ctl"), "pg_basebackup_command": bin("pg_basebackup"),
        "pg_data_folder": pg.data.display().to_string(), "pg_backup_folder": pg.backups.display().to_string(),
        "pg_log_filepath": pg.log.display().to_string()
    })
}
