//! Checks of the seed's role keys that no service section owns: `cti_adapters` (parsed
//! here; call tracking, `crates/services/calltracking`, runs its entries).

use super::walk::{index, join, quote, Check};
use serde_json::{Map, Value};

const CTI_KEYS: &[&str] = &["key", "iface", "port"];

/// `cti_adapters`: a list of `{key, iface, port}`; `iface` is an alias of the server or `default`.
pub(crate) fn cti_adapters(cx: &mut Check, v: &Value, p: &str, ifaces: Option<&Map<String, Value>>) {
    let Some(list) = cx.list(v, p) else { return };
    for (i, a) in list.iter().enumerate() {
        let ap = index(p, i);
        let Some(m) = cx.object(a, &ap) else { continue };
        cx.keys(m, &ap, CTI_KEYS, CTI_KEYS);
        cx.nonempty_str(m, &ap, "key");
        if let Some(alias) = cx.str(m, &ap, "iface") {
            if alias != "default" && !ifaces.is_some_and(|f| f.contains_key(alias)) {
                cx.report(
                    &join(&ap, "iface"),
                    format!("expected \"default\" or an interface alias of this server, found {}", quote(alias)),
                );
            }
        }
        cx.port(m, &ap, "port");
    }
}
