//! mware-testkit: starts the real components tests need (etcd, PostgreSQL, sshd,
//! snmpd, RabbitMQ virtual hosts and nodes, Kamailio and SIPp phones)
//! on loopback, each owned by a guard that kills exactly the process it started,
//! by PID, when dropped.

pub mod baresip;
pub mod etcd;
pub mod janus;
pub mod pg;
pub mod proc;
pub mod proxy;
pub mod rabbit;
pub mod sip;
pub mod snmpd;
pub mod sshd;

pub use proc::{free_port, wait_for_port, Child};
pub use proxy::Proxy;
