//! A small process for benchmarks and manual tests: `rtnode upstream` serves the
//! provisioning protocol from PostgreSQL without the mware daemon, `rtnode
//! rtcache ...` runs the sidecar exactly as `mware rtcache` will, `rtnode fixed` is the
//! benchmark's floor (see `fixed.rs`).
//!
//! ```text
//! RT_ENTITIES='{"12:34:56:78:9a:bc": {"domains": ["t1.example.ru"], "user": "u", "password": "p"}}' \
//!   rtnode upstream --listen 127.0.0.1:7000 --dsn "host=127.0.0.1 user=postgres dbname=prov"
//! rtnode rtcache --listen 127.0.0.1:8088 --upstream http://127.0.0.1:7000 --cache-dir /tmp/rtc
//! ```

mod fixed;

use clap::{Parser, Subcommand};
use mware_config::Secret;
use mware_realtime::Provisioning;
use mware_realtime::{provisioning_routes, ProvisioningHandle, RtcacheArgs};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once at start: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Serve the provisioning protocol from PostgreSQL (default families).
    Upstream {
        /// Address to listen on.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// libpq connection string (read from the environment variable RT_DSN if absent).
        #[arg(long, env = "RT_DSN")]
        dsn: String,
        /// A family whose table has no `domain` column, served to every entity (repeatable).
        #[arg(long = "shared-family")]
        shared_family: Vec<String>,
    },
    /// Run the rtcache sidecar.
    Rtcache(RtcacheArgs),
    /// Answer every request with a fixed body (the benchmark's floor).
    Fixed {
        /// Address to listen on.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// Threads, each with its own runtime and SO_REUSEPORT listener.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Size of the answer's body.
        #[arg(long, default_value_t = 139)]
        body_bytes: usize,
    },
}

/// Entities from the environment variable RT_ENTITIES, a JSON object as in the site
/// file's `provisioning.entities` (none: every call is refused with 404).
fn entities() -> anyhow::Result<std::collections::BTreeMap<String, mware_realtime::ProvisioningEntity>> {
    match std::env::var("RT_ENTITIES") {
        Ok(text) => Ok(serde_json::from_str(&text)?),
        Err(_) => Ok(Default::default()),
    }
}

fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        t.cancel();
    });
    token
}

/// The daemon's allocator (see the `mware` binary, whose `mware rtcache` this stands for).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Cmd::Fixed { listen, threads, body_bytes } = cli.cmd {
        return fixed::run(listen, threads, body_bytes);
    }
    tokio::runtime::Runtime::new()?.block_on(serve(cli))
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signal();
    match cli.cmd {
        Cmd::Upstream { listen, dsn, shared_family } => {
            let mut registry = prometheus_client::registry::Registry::default();
            let handle = ProvisioningHandle::new(&mut registry);
            let cfg = Provisioning { dsn: Secret::new(dsn), entities: entities()?, shared_families: shared_family, ..Default::default() };
            handle.start(&cfg).await?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            axum::serve(listener, provisioning_routes(handle).into_router()).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
        }
        Cmd::Rtcache(args) => mware_realtime::run_rtcache(args, shutdown).await?,
        Cmd::Fixed { .. } => unreachable!("served before the runtime starts"),
    }
    Ok(())
}
