//! The `mware` binary: the daemon (`mware run`) and its command-line tools.
//!
//! Thin by design: the model and validation live in `mware-config`, election
//! and state in `mware-coord`, service lifecycle in `mware-host`, and each
//! service in its own crate. This crate parses arguments, wires those together
//! and serves the HTTP API.

mod alarms_cmd;
mod api;
mod api_client;
mod backup_cmd;
mod cli;
mod cluster_view;
mod commands;
mod companion;
mod companion_supervisor;
mod daemon;
mod load;
mod logging;
mod metrics;
mod mutex_cmd;
mod ssh_cmd;
mod tasks_cmd;

mod routing;
mod services;

use clap::Parser;

/// mimalloc: the daemon makes many small, short-lived allocations on several threads
/// (HTTP requests, JSON, coordinator messages), where glibc malloc spent a tenth of the
/// CPU in the mutex benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    commands::dispatch(args)
}
