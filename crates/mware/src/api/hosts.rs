//! The API's `Host` header check (DNS rebinding): a request must name this instance by
//! one of its server's addresses (always: other instances forward there, with the
//! address as `Host`) or by an entry of `api.allowed_hosts` (default: `localhost`,
//! `127.0.0.1`, `[::1]` and the site's server names); anything else is answered 421.

use super::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use mware_config::Site;

/// The names and addresses `site` lets a request to `instance` name.
fn allowed<'a>(site: &'a Site, instance: &str) -> impl Iterator<Item = &'a str> {
    let own = site.instance(instance).map(|p| p.server.ifaces.values().map(String::as_str));
    let listed = site.api.allowed_hosts.as_ref().map(|l| l.iter().map(String::as_str));
    let defaults = site
        .api
        .allowed_hosts
        .is_none()
        .then(|| ["localhost", "127.0.0.1", "::1"].into_iter().chain(site.servers.iter().map(|s| s.name.as_str())));
    own.into_iter().flatten().chain(listed.into_iter().flatten()).chain(defaults.into_iter().flatten())
}

/// The layer: 421 for a `Host` this instance is not known by.
pub async fn check(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let site = st.0.site.borrow().clone();
    if let Some(host) = mware_http::host::refused(req.headers(), allowed(&site, &st.0.instance)) {
        st.0.metrics.misdirected.inc();
        return mware_http::host::misdirected(&host, "api.allowed_hosts");
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_and_a_configured_list() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/site.json")).unwrap();
        let (mut site, _) = crate::load::check(&text).expect("example site validates");
        let ok = |site: &Site, h: &str| {
            let (host, port) = mware_http::host::split(h).unwrap();
            allowed(site, "mware2").any(|a| mware_http::host::matches(a, &host, port))
        };
        for h in ["127.0.0.2:8271", "localhost:8271", "127.0.0.1", "[::1]:8271", "srv3", "SRV1:8271"] {
            assert!(ok(&site, h), "{h}");
        }
        for h in ["evil.example", "127.0.0.3:8271", "mware.example.net"] {
            assert!(!ok(&site, h), "{h}");
        }
        site.api.allowed_hosts = Some(vec!["mware.example.net".into()]);
        assert!(ok(&site, "mware.example.net:8271"));
        assert!(ok(&site, "127.0.0.2:8271"), "its own address, always");
        assert!(!ok(&site, "localhost"), "the default list is replaced");
    }
}
