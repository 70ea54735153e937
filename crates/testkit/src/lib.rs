//! mware-testkit: starts the real components tests need (etcd, PostgreSQL, sshd,
//! snmpd, rsyslogd, RabbitMQ virtual hosts and nodes, Kamailio and SIPp phones, pebble and BIND 9)
//! on loopback, each owned by a guard that kills exactly the process it started,
//! by PID, when dropped.

pub mod baresip;
pub mod bind;
pub mod etcd;
pub mod janus;
pub mod pebble;
pub mod pg;
pub mod proc;
pub mod proxy;
pub mod rabbit;
pub mod rsyslog;
pub mod sip;
pub mod snmpd;
pub mod sshd;

pub use proc::{free_port, wait_for_port, Child};
pub use proxy::Proxy;
