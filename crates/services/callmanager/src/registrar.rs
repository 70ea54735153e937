//! The group contact in the registrar (through `mware_sip::Registrar`, the one place that
//! knows Kamailio). mware advertises `sip:mware-g<group>@<proxy>` as its Contact; the
//! active instance binds that AoR to its own address in the registrar, replacing the
//! previous instance's binding, so requests the phones send inside a dialog (a BYE, a
//! re-INVITE) reach whichever instance is active through the proxy.

use crate::error::CallError;
use std::net::SocketAddr;

/// The group contact's user part.
pub fn user(group: u32) -> String {
    format!("mware-g{group}")
}

/// The Contact mware advertises: the group's AoR at the proxy.
pub fn contact(group: u32, proxy: SocketAddr) -> String {
    format!("sip:{}@{proxy}", user(group))
}

/// The AoR as the registrar keys it (`use_domain`: user@host, the host without port).
pub fn aor(group: u32, proxy: SocketAddr) -> String {
    format!("{}@{}", user(group), proxy.ip())
}

/// Binds `aor` to `target` alone (permanent: the next active instance replaces it).
pub async fn bind(rpc_url: &str, aor: &str, target: &str) -> Result<(), CallError> {
    let sip = |e: mware_sip::RegistrarError| CallError::Sip(e.to_string());
    mware_sip::Registrar::new(rpc_url).map_err(sip)?.bind(aor, target).await.map_err(sip)
}
