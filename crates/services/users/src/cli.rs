//! `mware users …`: an operator's side of the user services: invite an address, list a
//! domain's invitations, resend or revoke one, list the registrations waiting for
//! approval, approve one.

use crate::api::paths;
use clap::{CommandFactory, FromArgMatches, Parser};
use mware_client::{api, encode, path, CliEnv, Subcommand};
use serde_json::json;

/// Users of a domain: invitations and approvals (the operator's side).
#[derive(Debug, Parser)]
#[command(name = "users")]
struct Cmd {
    /// What to do.
    #[command(subcommand)]
    action: Action,
}

pub(crate) fn subcommands() -> Vec<Subcommand> {
    vec![Subcommand { command: Cmd::command, run: |m, env| Box::pin(async move { run(Cmd::from_arg_matches(&m)?.action, env).await }) }]
}

#[derive(Debug, clap::Args)]
struct Api {
    /// API of any instance (calls are forwarded to the group's active instance).
    #[arg(long, default_value = "http://127.0.0.1:8271")]
    api: String,
    /// Environment variable holding the operator's (or the API) token.
    #[arg(long, default_value = "MWARE_API_TOKEN")]
    token_env: String,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Invite an address to a domain with a role; a link is mailed.
    Invite {
        /// The domain.
        domain: String,
        /// The address.
        email: String,
        /// The role (one of the domain's `roles`).
        #[arg(long, default_value = "user")]
        role: String,
        #[command(flatten)]
        api: Api,
    },
    /// A domain's invitations with their state.
    Invitations {
        /// The domain.
        domain: String,
        #[command(flatten)]
        api: Api,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send an invitation again with a new link (the old one stops working).
    Resend {
        /// The domain.
        domain: String,
        /// The invitation's id.
        id: i64,
        #[command(flatten)]
        api: Api,
    },
    /// Revoke a pending invitation.
    Revoke {
        /// The domain.
        domain: String,
        /// The invitation's id.
        id: i64,
        #[command(flatten)]
        api: Api,
    },
    /// A domain's confirmed registrations waiting for approval, oldest first.
    Waiting {
        /// The domain.
        domain: String,
        #[command(flatten)]
        api: Api,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a confirmed registration waiting for approval.
    Approve {
        /// The domain.
        domain: String,
        /// The account's login (its address).
        login: String,
        #[command(flatten)]
        api: Api,
    },
}

async fn run(action: Action, _env: CliEnv) -> anyhow::Result<()> {
    let v = match action {
        Action::Invite { domain, email, role, api: a } => {
            api::post(&a.api, paths::INVITATIONS, &a.token_env, &json!({"domain": domain, "email": email, "role": role}), "the invitation")
                .await?
        }
        Action::Invitations { domain, api: a, json } => {
            let p = format!("{}?domain={}", paths::INVITATIONS, encode(&domain));
            let v = api::send(reqwest::Method::GET, &a.api, &p, &a.token_env, None, "the list").await?;
            if !json {
                println!("{:>8} {:<40} {:<10} {:<9} EXPIRES", "ID", "EMAIL", "ROLE", "STATE");
                for i in v["invitations"].as_array().cloned().unwrap_or_default() {
                    let s = |k: &str| i[k].as_str().unwrap_or("-").to_string();
                    println!("{:>8} {:<40} {:<10} {:<9} {}", i["id"], s("email"), s("role"), s("state"), s("expires_at"));
                }
                return Ok(());
            }
            v
        }
        Action::Resend { domain, id, api: a } => {
            api::post(
                &a.api,
                &path(paths::INVITATION_RESEND, &[("id", &id.to_string())]),
                &a.token_env,
                &json!({"domain": domain}),
                "the resend",
            )
            .await?
        }
        Action::Revoke { domain, id, api: a } => {
            api::post(
                &a.api,
                &path(paths::INVITATION_REVOKE, &[("id", &id.to_string())]),
                &a.token_env,
                &json!({"domain": domain}),
                "the revoke",
            )
            .await?
        }
        Action::Waiting { domain, api: a, json } => {
            let p = format!("{}?domain={}", paths::REGISTRATIONS, encode(&domain));
            let v = api::send(reqwest::Method::GET, &a.api, &p, &a.token_env, None, "the list").await?;
            if !json {
                println!("{:<40} {:<40} CREATED", "LOGIN", "EMAIL");
                for i in v["awaiting_approval"].as_array().cloned().unwrap_or_default() {
                    let s = |k: &str| i[k].as_str().unwrap_or("-").to_string();
                    println!("{:<40} {:<40} {}", s("login"), s("email"), s("created_at"));
                }
                return Ok(());
            }
            v
        }
        Action::Approve { domain, login, api: a } => {
            api::post(&a.api, paths::REGISTRATION_APPROVE, &a.token_env, &json!({"domain": domain, "login": login}), "the approval").await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
