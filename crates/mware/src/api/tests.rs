//! Checks of the declared routes against the router and the OpenAPI document, on a
//! daemon state built from the example site with a throwaway embedded coordinator.

use super::*;
use axum::http::Method;

async fn state(dir: &std::path::Path) -> AppState {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/site.json")).unwrap();
    let (mut site, _) = crate::load::check(&text).expect("example site validates");
    site.coordination.backend = mware_config::Backend::Embedded;
    site.coordination.path = dir.join("coord.sqlite").display().to_string();
    let coord = mware_coord::connect(&site).await.unwrap();
    let instance = site.instances().next().unwrap().role.name.clone();
    let mut registry = Registry::default();
    let services = crate::services::build(&mut registry);
    let (_, site_rx) = watch::channel(Arc::new(site.clone()));
    let (_, act_rx) = watch::channel(Activity::Passive { reason: "test".into() });
    let host = Host::new(
        services,
        instance.clone(),
        coord.clone(),
        site_rx.clone(),
        std::time::Duration::from_secs(1),
        Default::default(),
        mware_host::Events::detached(),
    );
    AppState(Arc::new(Inner {
        instance,
        tree: RwLock::new(Arc::new(DomainTree::build(&site))),
        site: site_rx,
        activity: act_rx,
        coord,
        host,
        registry,
        metrics: Metrics::default(),
        token: None,
        token_env: "MWARE_API_TOKEN".into(),
        operator: None,
        http: reqwest::Client::new(),
        leaders: Default::default(),
        ready: AtomicBool::new(false),
        started_ms: 0,
        shutdown: Default::default(),
    }))
}

#[tokio::test]
async fn every_declared_route_is_in_the_openapi_document_with_its_security() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path()).await;
    let doc = openapi::document(&st);
    let routes = declared(&st);
    assert!(routes.len() >= 15, "daemon and service routes: {}", routes.len());
    for (svc, r) in &routes {
        assert!(openapi::describes(&doc, r.path, r.method.as_ref()), "{svc:?} {:?} {} is not in the OpenAPI document", r.method, r.path);
        let m = r.method.clone().unwrap_or(Method::POST);
        let v = serde_json::to_value(&doc.paths.paths[r.path]).unwrap();
        let op = &v[m.as_str().to_lowercase()];
        let security = op.get("security").cloned().unwrap_or_default();
        match r.access.scheme() {
            None => assert!(security.is_null(), "{} {}: public, found security {security}", m, r.path),
            Some(s) => assert!(security.to_string().contains(s), "{} {}: expected security {s}, found {security}", m, r.path),
        }
    }
    // The operator's calls are marked as such.
    let v = serde_json::to_value(&doc).unwrap();
    assert!(v["paths"]["/api/v1/groups/{group}/switchover"]["post"]["security"].to_string().contains("operator"));
    assert!(v["paths"]["/api/v1/domains/{domain}/mutexes/{name}/evict"]["post"]["security"].to_string().contains("operator"));
    assert!(v["paths"]["/api/v1/config"]["get"]["security"].to_string().contains("bearer"));
}

#[tokio::test]
async fn no_two_routes_share_a_path_and_method() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path()).await;
    let mut seen = std::collections::BTreeSet::new();
    for (svc, r) in declared(&st) {
        let key = (r.path, r.method.as_ref().map(|m| m.to_string()));
        assert!(seen.insert(key.clone()), "{svc:?} declares {key:?} twice");
    }
    // And the router builds (axum panics on overlapping routes).
    let _ = router(st);
}

/// Percent-encodes the bytes of `s` chosen by `mask` (bit i for byte i, cycling).
fn encode(s: &str, mask: u64) -> String {
    s.bytes().enumerate().map(|(i, b)| if mask >> (i % 64) & 1 == 1 { format!("%{b:02X}") } else { (b as char).to_string() }).collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Issue 13: the router must pick the group from exactly the name the handler uses.
    /// Every encoding of a domain (percent-encoded bytes, case, a trailing dot) reaches
    /// the group its canonical form routes to; before, `tenant1%2Eexample.ru` went to the
    /// default group while the handler decoded it to a name another group owns.
    #[test]
    fn every_encoding_of_a_domain_routes_like_its_canonical_form(
        pick in 0usize..4, sub in proptest::option::of("[a-z0-9]{1,8}"), mask in proptest::prelude::any::<u64>(),
        upper in proptest::prelude::any::<u64>(), dot in proptest::prelude::any::<bool>(),
    ) {
        let base = ["tenant1.example.ru", "tenant2.example.ru", "example.ru", "other.org"][pick];
        let name = match &sub { Some(s) => format!("{s}.{base}"), None => base.to_string() };
        let cased: String = name.chars().enumerate().map(|(i, c)| if upper >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c }).collect();
        let raw = format!("{}{}", cased, if dot { "." } else { "" });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (got, want) = rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let st = state(dir.path()).await;
            let want = st.0.tree.read().unwrap().route(&mware_config::canonical(&name).unwrap());
            let app = router(st);
            let uri = format!("/api/v1/domains/{}/mutexes", encode(&raw, mask));
            let resp = tower::ServiceExt::oneshot(app, axum::http::Request::get(&uri).body(axum::body::Body::empty()).unwrap()).await.unwrap();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            (v["group"].as_u64().map(|g| g as u32), want)
        });
        proptest::prop_assert_eq!(got, want, "{}", raw);
    }
}

/// A body larger than the forwarder takes is the client's fault: 413, not retryable, and
/// the cached active instance of the group is kept (it was dropped, with a 503
/// `retryable: true`, before).
#[tokio::test]
async fn a_body_too_large_to_forward_is_413_and_keeps_the_leader_cache() {
    use axum::body::Body;
    use axum::http::StatusCode;
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path()).await;
    let cached = || st.0.leaders.lock().unwrap().contains_key(&7);
    let big = vec![b'x'; 10 << 20];
    let declared = axum::http::Request::post("/api/v1/x").header("content-length", big.len()).body(Body::from(big.clone())).unwrap();
    let streamed = axum::http::Request::post("/api/v1/x")
        .body(Body::from_stream(futures::stream::iter(
            big.chunks(1 << 20).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
        )))
        .unwrap();
    for req in [declared, streamed] {
        st.0.leaders.lock().unwrap().insert(7, (std::time::Instant::now(), Some(("m2".into(), "127.0.0.1:9".into()))));
        let resp = forward::proxy_to(&st, 7, "m2", "127.0.0.1:9", req).await;
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let v: serde_json::Value = serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap()).unwrap();
        assert_eq!(v["retryable"], false, "{v}");
        assert!(v["error"].as_str().unwrap().starts_with("request body: expected at most 8388608 bytes"), "{v}");
        assert!(cached(), "the leader cache is kept");
    }
    // An active instance that does not answer still drops the cache (503, retryable).
    let resp = forward::proxy_to(&st, 7, "m2", "127.0.0.1:9", axum::http::Request::post("/api/v1/x").body(Body::from("{}")).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!cached());
}

/// During a failover the group has no active instance for ~0.1 s: a call forwarded then
/// is refused (retryable), and the next one must find the new active instance at once,
/// not a cached "none" (that cache cost ~0.2 s to the first call after a kill -9).
#[tokio::test]
async fn a_group_without_an_active_instance_is_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let st = state(dir.path()).await;
    let site = st.0.site.borrow().clone();
    let me = site.instances().next().unwrap();
    let group = me.role.group;
    let other = site.instances().find(|p| p.role.group == group && p.role.name != st.0.instance).map(|p| p.role.name.clone());
    let t = forward::target(&st, group, false).await;
    assert!(matches!(&t, forward::Target::Refuse(g, why) if *g == group && why.contains("no active instance")), "{t:?}");
    assert!(st.0.leaders.lock().unwrap().get(&group).is_none(), "a group without an active instance was cached");
    // Another member becomes active: the very next call goes there.
    let Some(other) = other else { return };
    let info = mware_coord::MemberInfo {
        instance: other.clone(),
        group,
        order: 1,
        address: "127.0.0.1:1".into(),
        version: "t".into(),
        since_ms: 0,
    };
    let mut m = st.0.coord.join(info).await.unwrap();
    m.wait_active().await.unwrap();
    let t = forward::target(&st, group, false).await;
    assert!(matches!(&t, forward::Target::Remote(n, _) if *n == other), "{t:?}");
    m.leave().await;
}

/// The client's address of a forwarded call is believed only from the member the call
/// names, connecting from that member's own address; anyone else's header is ignored.
#[test]
fn the_client_address_header_is_believed_only_from_the_forwarding_member() {
    use axum::http::HeaderMap;
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/site.json")).unwrap();
    let (site, _) = crate::load::check(&text).expect("example site validates");
    let member = site.instances().next().unwrap();
    let member_ip: std::net::IpAddr = member.server.ifaces[&member.role.iface].parse().unwrap();
    let name = member.role.name.clone();
    let client: std::net::IpAddr = "203.0.113.7".parse().unwrap();
    let other: std::net::IpAddr = "198.51.100.9".parse().unwrap();
    let headers = |by: Option<&str>, addr: &str| {
        let mut h = HeaderMap::new();
        if let Some(b) = by {
            h.insert(forward::FORWARDED_BY, b.parse().unwrap());
        }
        h.insert(forward::CLIENT_ADDR, addr.parse().unwrap());
        h
    };
    let got = |h: &HeaderMap, peer| forward::client_addr(&site, h, Some(peer));
    assert_eq!(got(&headers(Some(&name), "203.0.113.7"), member_ip), Some(client), "from the member: its client");
    assert_eq!(got(&headers(Some(&name), "203.0.113.7"), other), Some(other), "the member's name from another address");
    assert_eq!(got(&headers(Some("nobody"), "203.0.113.7"), member_ip), Some(member_ip), "an instance the site lacks");
    assert_eq!(got(&headers(None, "203.0.113.7"), other), Some(other), "a client's own header");
    assert_eq!(got(&headers(Some(&name), "not an address"), member_ip), Some(member_ip), "garbage");
    assert_eq!(got(&HeaderMap::new(), other), Some(other));
    assert_eq!(forward::client_addr(&site, &HeaderMap::new(), None), None);
}
