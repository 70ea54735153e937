//! mware-alarms: the alarms service (seeds: "Service collecting syslog events and
//! sending SNMP trap", "Telegram: system state monitoring bot").
//!
//! On the active instance of a group it takes syslog over UDP and TCP (`syslog`),
//! matches each message against the group's rules and counts repeats in a window
//! (`rules`: pure, tested without sockets), turns monitoring state changes into
//! alarms (`intake`), writes every alarm to the group's store before anything sends
//! it (`store`), and sends it in order to each SNMP manager (`snmp`) and to the
//! Telegram chats (`telegram`) from each channel's cursor (`channel`), so a
//! failover resends what was not confirmed, with the same id, and loses nothing.
#![deny(missing_docs)]

mod alarm;
mod api;
mod channel;
mod clean;
mod cli;
mod error;
mod handle;
mod intake;
mod metrics;
mod queue;
mod rules;
mod section;
mod service;
mod snmp;
mod store;
mod syslog;
mod tcpgate;
mod telegram;

pub use alarm::Alarm;
pub use error::AlarmsError;
pub use handle::AlarmsService;
pub use section::{AlarmRule, Alarms, MonitoringAlarms, SnmpManager, SyslogIn, Telegram, FACILITIES, SEVERITIES};

/// The service and its section (`alarms`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "alarms",
        sections: vec![mware_config::section::<section::Alarms>()],
        build: |registry| std::sync::Arc::new(AlarmsService::new(registry)),
        cli: vec![cli::subcommand()],
    }
}
/// `mwareAlarmsMIB` (enterprises.32473.7): the OID under which the alarms' traps are sent.
pub use snmp::BASE as MIB_BASE;
