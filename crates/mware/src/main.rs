//! The `mware` binary: the daemon (`mware run`) and its command-line tools.
//!
//! Thin by design: the model and validation live in `mware-config`, election
//! and state in `mware-coord`, service lifecycle in `mware-host`, and each
//! service in its own crate. This crate parses arguments, wires those together
//! and serves the HTTP API.

mod api;
mod cli;
mod cluster_view;
mod commands;
mod companion;
mod companion_supervisor;
mod daemon;
mod load;
mod logging;
mod metrics;
mod reload;
mod ssh_cmd;
mod status_text;

mod routing;
mod services;

use clap::{CommandFactory, FromArgMatches};

/// mimalloc: the daemon makes many small, short-lived allocations on several threads
/// (HTTP requests, JSON, coordinator messages), where glibc malloc spent a tenth of the
/// CPU in the mutex benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // The site's own commands (clap derive, `cli.rs`) plus each service's subcommands
    // from the registry (`mware backup …`, `mware tasks …`).
    let subs = mware_registry::subcommands();
    let mut cmd = cli::Cli::command();
    for s in &subs {
        cmd = cmd.subcommand((s.command)());
    }
    let matches = cmd.get_matches();
    if let Some((name, m)) = matches.subcommand() {
        if let Some(s) = subs.iter().find(|s| (s.command)().get_name() == name) {
            return commands::run_service(s, m.clone());
        }
    }
    match cli::Cli::from_arg_matches(&matches) {
        Ok(args) => commands::dispatch(args),
        Err(e) => e.exit(),
    }
}
