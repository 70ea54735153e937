//! Who a member of a hunt number or queue is: the core names the phone that rings or
//! answered by the Contact of its reply; the registrar's bindings say which account has
//! that contact (the member's own AoR, not the hunt number's). Read with `ul.dump` at
//! most once a second, on a contact not seen yet; a contact no account has is shown as
//! its address.

use mware_sip::Registrar;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Shortest pause between two reads of the registrar.
const REFRESH: Duration = Duration::from_secs(1);
/// Most contacts remembered.
const MAX: usize = 100_000;

/// The users bound to each contact address, and when they were read.
type Known = (Option<Instant>, HashMap<String, Vec<String>>);

/// The contacts of the registrar's accounts, by address.
pub struct Members {
    registrar: Option<Registrar>,
    known: Mutex<Known>,
}

impl Members {
    /// Members from `registrar` (none: members are shown by address).
    pub fn new(registrar: Option<Registrar>) -> Members {
        Members { registrar, known: Mutex::new((None, HashMap::new())) }
    }

    /// The user of the account bound to the contact at `addr`, other than `called`
    /// (the hunt number itself); `addr` when none is known.
    pub async fn name(&self, addr: &str, called: &str) -> String {
        let mut known = self.known.lock().await;
        let stale = known.0.is_none_or(|t| t.elapsed() >= REFRESH);
        if !known.1.contains_key(addr) && stale {
            if let Some(r) = &self.registrar {
                match r.dump().await {
                    Ok(bindings) => {
                        let mut map: HashMap<String, Vec<String>> = HashMap::new();
                        for b in bindings.into_iter().take(MAX) {
                            if let Ok(a) = mware_sip::addr::contact_target(&b.contact) {
                                let user = b.aor.split('@').next().unwrap_or_default().to_string();
                                map.entry(a.to_string()).or_default().push(user);
                            }
                        }
                        known.1 = map;
                    }
                    Err(e) => tracing::info!(error = %e, "members: the registrar's bindings could not be read"),
                }
                known.0 = Some(Instant::now());
            }
        }
        known.1.get(addr).and_then(|users| users.iter().find(|u| *u != called)).cloned().unwrap_or_else(|| addr.to_string())
    }
}
