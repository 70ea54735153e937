//! mware-sip: what mware's SIP services share, below them (a service never depends on
//! another service's crate). [`section`] is the group's `sip` section (type, defaults,
//! check), [`registrar`] the registrar adapter (Kamailio's usrloc over JSON-RPC),
//! [`options`] SIP OPTIONS pings over UDP, [`addr`] the checks of addresses and names.
#![deny(missing_docs)]

pub mod addr;
pub mod options;
pub mod registrar;
pub mod section;

pub use registrar::{Binding, Registrar, RegistrarError};
pub use section::SipConfig;
