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
    let host = Host::new(services, instance.clone(), coord.clone(), site_rx.clone(), std::time::Duration::from_secs(1), Default::default(), mware_host::Events::detached());
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
