//! RabbitMQ for tests.
//!
//! - [`Vhost`]: a virtual host of its own on the machine's RabbitMQ (5672), so tests and
//!   other users of that broker never share a queue; deleted on drop.
//! - [`RabbitNode`]: a RabbitMQ node of the test's own (its own node name, ports, data
//!   and config dirs), for tests that kill or restart the broker; started in its own
//!   process group, which is killed (by its id) on drop. The machine's broker is
//!   never touched.

use crate::proc::{free_port, wait_for_port};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ctl(args: &[&str], env: &[(String, String)]) -> anyhow::Result<()> {
    let mut c = Command::new("rabbitmqctl");
    c.arg("-q").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output()?;
    anyhow::ensure!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// A virtual host on the machine's RabbitMQ, with guest allowed everything in it.
pub struct Vhost {
    /// Its name.
    pub name: String,
}

impl Vhost {
    /// Creates `mware-test-<random>`.
    pub fn new() -> anyhow::Result<Vhost> {
        let name = format!("mware-test-{}-{:08x}", std::process::id(), rand_u32());
        ctl(&["add_vhost", &name], &[])?;
        ctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"], &[])?;
        Ok(Vhost { name })
    }

    /// `amqp://guest:guest@127.0.0.1:5672/<vhost>`.
    pub fn dsn(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = ctl(&["delete_vhost", &self.name], &[]);
    }
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    t ^ (std::process::id() << 16)
}

/// A RabbitMQ node of the test's own.
pub struct RabbitNode {
    /// AMQP port on 127.0.0.1.
    pub port: u16,
    /// The node's log.
    pub log: PathBuf,
    env: Vec<(String, String)>,
    pgid: Option<i32>,
    _dir: tempfile::TempDir,
}

impl RabbitNode {
    /// Starts a node and waits until it accepts AMQP connections.
    pub fn start() -> anyhow::Result<RabbitNode> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let dist = free_port();
        let d = dir.path();
        std::fs::write(d.join("enabled_plugins"), "[].\n")?;
        std::fs::write(d.join("rabbitmq.conf"), format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users.guest = true\n"))?;
        std::fs::write(d.join("rabbitmq-env.conf"), "")?;
        let s = |p: &str| d.join(p).display().to_string();
        let env = vec![
            ("RABBITMQ_NODENAME".into(), format!("mwaretest{port}@localhost")),
            ("RABBITMQ_NODE_IP_ADDRESS".into(), "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT".into(), port.to_string()),
            ("RABBITMQ_DIST_PORT".into(), dist.to_string()),
            ("RABBITMQ_MNESIA_BASE".into(), s("mnesia")),
            ("RABBITMQ_LOG_BASE".into(), s("log")),
            ("RABBITMQ_ENABLED_PLUGINS_FILE".into(), s("enabled_plugins")),
            ("RABBITMQ_CONFIG_FILE".into(), s("rabbitmq.conf")),
            ("RABBITMQ_CONF_ENV_FILE".into(), s("rabbitmq-env.conf")),
            ("RABBITMQ_PID_FILE".into(), s("rabbit.pid")),
            ("HOME".into(), d.display().to_string()),
            ("ERL_EPMD_ADDRESS".into(), "127.0.0.1".into()),
        ];
        let mut n = RabbitNode { port, log: d.join("node.out"), env, pgid: None, _dir: dir };
        n.launch()?;
        Ok(n)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut cmd = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).process_group(0);
        let child = cmd.spawn()?;
        self.pgid = Some(child.id() as i32);
        // Reaped by nobody else: a thread waits for it so it does not linger as a zombie.
        std::thread::spawn(move || {
            let mut c = child;
            let _ = c.wait();
        });
        wait_for_port(&format!("127.0.0.1:{}", self.port), Duration::from_secs(60))
            .map_err(|e| anyhow::anyhow!("{e}; node log:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default()))?;
        // The port opens before the node has finished booting; a status call waits for it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while ctl(&["await_startup"], &self.env).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`.
    pub fn dsn(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Kills the node's whole process group (SIGKILL): the broker dies mid-work.
    pub fn kill9(&mut self) {
        if let Some(g) = self.pgid.take() {
            unsafe {
                libc::kill(-g, libc::SIGKILL);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts the node again on the same data (after [`RabbitNode::kill9`]).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.launch()
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        self.kill9();
    }
}
