//! mware-config: the site file of a telecom site running mware.
//!
//! It holds the typed model ([`Site`] and friends), the validator that reports
//! every problem with its JSON path ([`validate`]), the JSON Schema
//! ([`schema`]) and the domain tree that says which group serves a domain
//! ([`DomainTree`]), with the one rule for domain names ([`canonical`]). No I/O
//! and no async: callers read files and pass text.
#![deny(missing_docs)]

mod alarms;
mod clock;
mod devicemanager;
mod domain;
mod model;
mod monitoring;
pub mod pg;
mod provisioning;
mod redact;
mod secret;
mod ssh;
pub mod strict_json;
mod table;
mod target;
mod tasks;
mod tree;
mod validate;

pub use alarms::{AlarmRule, Alarms, MonitoringAlarms, SnmpManager, SyslogIn, Telegram, FACILITIES, SEVERITIES};
pub use clock::now_ms;
pub use devicemanager::DeviceManager;
pub use domain::{canonical, DomainError, DomainProblem, MAX_LABEL_LEN, MAX_NAME_LEN};
pub use model::*;
pub use monitoring::{Monitoring, Probe, ProbeKind, SshCopy};
pub use provisioning::{is_entity_id, Provisioning, ProvisioningEntity};
pub use redact::{is_secret_key, mask_url_userinfo, redact};
pub use secret::{same, Secret};
pub use ssh::{SshSettings, DEFAULT_KNOWN_HOSTS};
pub use target::TargetPattern;
pub use tasks::{is_item_name, schedule, Overlap, ServiceTask};
pub use tree::DomainTree;
pub use validate::{validate, Problem, Severity, Validated};

/// The JSON Schema of the site file, as a JSON value.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Site)).expect("schema serialises")
}
