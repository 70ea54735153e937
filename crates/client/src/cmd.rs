//! A service's subcommands, as the binary takes them: a clap command (its `--help` is
//! the service's own) and the function that runs what was parsed, with what only the
//! binary can give it ([`CliEnv`]).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// A boxed future of the tools.
pub type BoxFut<T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send>>;

/// What runs a parsed subcommand.
pub type RunFn = fn(clap::ArgMatches, CliEnv) -> BoxFut<()>;

/// What the binary gives a service's subcommand.
#[derive(Clone, Copy)]
pub struct CliEnv {
    /// Reads a site file and validates it with every registered section; for a bootstrap
    /// file (`site` and `coordination` only), the site stored in the coordinator.
    pub site: fn(PathBuf) -> BoxFut<mware_config::Site>,
}

/// One top-level subcommand of `mware`, contributed by a service crate.
#[derive(Clone, Copy)]
pub struct Subcommand {
    /// The clap command (name, about, its actions and arguments).
    pub command: fn() -> clap::Command,
    /// Runs it with the matches of that command.
    pub run: RunFn,
}

/// Where a tool reaches the API and how it prints the answer: the arguments every
/// service's subcommand flattens in (`#[command(flatten)] conn: Conn`).
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// API of any instance (it forwards the call to the active instance of the right group).
    #[arg(long, default_value = "http://127.0.0.1:8271")]
    pub api: String,
    /// Environment variable holding the API token.
    #[arg(long, default_value = "MWARE_API_TOKEN")]
    pub token_env: String,
    /// Print the raw JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
