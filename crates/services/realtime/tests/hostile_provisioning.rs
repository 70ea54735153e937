//! Hostile inputs against the provisioning service (issue 13 item 1, issue 18), on a
//! real PostgreSQL, with the res_config_curl client: no credential, a wrong one, an
//! unknown entity, a domain where an entity id is expected, an entity that writes when
//! it may not, patterns in update lookups and destroy conditions, hostile family names
//! (metrics stay bounded), text in an integer column, a table without a domain column.
//! Every refusal answers the protocol's failure body and changes nothing.

mod common;

use common::{bounded, Ast, ProvServer, TestDb, E1, E2, MULTI, RO};
use mware_realtime::codec::encode;

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.client().await.query_one(sql, &[]).await.unwrap().get(0)
}

/// Rows of two tenants, written straight into the database.
async fn seed(db: &TestDb) {
    db.client()
        .await
        .batch_execute(
            "INSERT INTO ps_endpoints (id, domain, context, max_audio_streams) VALUES \
             ('1001', 't1.example.ru', 'a', 1), ('1002', 't1.example.ru', 'b', 1), ('1003', 't3.example.ru', 'c', 1), \
             ('2001', 't2.example.ru', 'x', 1), ('2002', 't2.example.ru', 'y', 1);
             INSERT INTO ps_aors (id, max_contacts) VALUES ('1001', 1);",
        )
        .await
        .unwrap();
}

const ALL: &str = "SELECT count(*) FROM ps_endpoints";
/// A fingerprint of every row, to show nothing changed.
const SUM: &str = "SELECT count(*) * 1000 + sum(length(id || domain || coalesce(context, ''))) FROM ps_endpoints";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_a_wrong_one_or_an_unknown_entity_gets_nothing() {
    bounded(60, async {
        let db = TestDb::create("hcred").await;
        seed(&db).await;
        let before = count(&db, SUM).await;
        let srv = ProvServer::start(&db.config(), 0).await;
        let url = srv.url();
        let good = Ast::new(&url, E1, "endpoint");
        assert_eq!(good.single(&[("id", "1001")]).await, (200, "id=1001&context=a&max_audio_streams=1\n".into()));

        let (u, p) = common::cred(E1).unwrap();
        let cases = [
            ("no credential", Ast::with(&url, E1, "endpoint", None)),
            ("wrong password", Ast::with(&url, E1, "endpoint", Some((u.clone(), format!("{p}x"))))),
            ("wrong user", Ast::with(&url, E1, "endpoint", Some(("ast2".into(), p.clone())))),
            ("another entity's credential", Ast::with(&url, E1, "endpoint", common::cred(E2))),
            ("empty credential", Ast::with(&url, E1, "endpoint", Some((String::new(), String::new())))),
        ];
        for (what, ast) in &cases {
            for (op, body, fail) in [
                ("single", "id=1001", ""),
                ("multi", "id%20LIKE=%25", ""),
                ("store", "id=9&context=z", "-1"),
                ("update?id=1001", "context=z", "-1"),
                ("destroy", "id=1001", "-1"),
            ] {
                let (code, text, www) = ast.post_full(op, body.into()).await;
                assert_eq!((code, text.as_str()), (401, fail), "{what}: {op}");
                assert_eq!(www.as_deref(), Some("Basic realm=\"mware provisioning\""), "{what}: {op}");
            }
        }
        // A header that is not Basic, or not base64.
        for h in ["Bearer pw-ast1-Secret", "Basic !!!", "Basic", "basic YXN0MQ=="] {
            let r = reqwest::Client::new()
                .post(format!("{url}/provision/asterisk/{E1}/endpoint/single"))
                .header("authorization", h)
                .body("id=1001")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 401, "{h}");
            assert_eq!(r.text().await.unwrap(), "", "{h}");
        }
        // Unknown entity (the routing layer refuses it too, see realtime_e2e), and a domain
        // where the entity id belongs (the domain form is off by default).
        for seg in ["aa:bb:cc:dd:ee:ff", "t1.example.ru", "not an id", "12%3A34"] {
            let ast = Ast::with(&url, seg, "endpoint", common::cred(E1));
            assert_eq!(ast.single(&[("id", "1001")]).await, (404, "".into()), "{seg}");
            assert_eq!(ast.store(&[("id", "7")]).await, (404, "-1".into()), "{seg}");
        }
        assert_eq!(count(&db, SUM).await, before, "nothing changed");
        let m = srv.metrics();
        assert!(m.contains(r#"mware_provisioning_requests_total{family="endpoint",op="single",outcome="unauthorized"}"#), "{m}");
        assert!(m.contains(r#"outcome="unknown_entity""#), "{m}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_domain_form_works_only_when_the_site_says_so() {
    bounded(60, async {
        let db = TestDb::create("hdom").await;
        seed(&db).await;
        let mut cfg = db.config();
        cfg.accept_domain_segment = true;
        let srv = ProvServer::start(&cfg, 0).await;
        let url = srv.url();
        // The credential names the entity; the domain must be one of its own.
        let t1 = Ast::with(&url, "T1.Example.RU", "endpoint", common::cred(E1));
        assert_eq!(
            t1.multi(&[("id LIKE", "%")]).await,
            (200, "id=1001&context=a&max_audio_streams=1\nid=1002&context=b&max_audio_streams=1\n".into())
        );
        assert_eq!(Ast::with(&url, "t2.example.ru", "endpoint", common::cred(E1)).single(&[("id", "2001")]).await, (403, "".into()));
        assert_eq!(Ast::with(&url, "t1.example.ru", "endpoint", None).single(&[("id", "1001")]).await, (401, "".into()));
        // A multi-domain entity narrowed to one of its domains by the URL.
        let t3 = Ast::with(&url, "t3.example.ru", "endpoint", common::cred(MULTI));
        assert_eq!(t3.multi(&[("id LIKE", "%")]).await, (200, "id=1003&context=c&max_audio_streams=1\n".into()));
        // The entity id form keeps working beside it.
        assert_eq!(Ast::new(&url, E2, "endpoint").single(&[("id", "2001")]).await, (200, "id=2001&context=x&max_audio_streams=1\n".into()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_that_may_not_write_writes_nothing() {
    bounded(60, async {
        let db = TestDb::create("hro").await;
        seed(&db).await;
        let before = count(&db, SUM).await;
        let srv = ProvServer::start(&db.config(), 0).await;
        let ro = Ast::new(&srv.url(), RO, "endpoint");
        assert_eq!(ro.single(&[("id", "1001")]).await, (200, "id=1001&context=a&max_audio_streams=1\n".into()), "reads are allowed");
        assert_eq!(ro.store(&[("id", "1009"), ("context", "z")]).await, (403, "-1".into()));
        assert_eq!(ro.update("id", "1001", &[("context", "z")]).await, (403, "-1".into()));
        assert_eq!(ro.destroy("id", "1001", &[]).await, (403, "-1".into()));
        assert_eq!(Ast::new(&srv.url(), RO, "aor").store(&[("id", "9")]).await, (403, "-1".into()));
        assert_eq!(count(&db, SUM).await, before, "nothing written");
        assert!(srv.metrics().contains(r#"op="store",outcome="forbidden""#));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_in_update_lookups_and_destroy_conditions_are_refused() {
    bounded(60, async {
        let db = TestDb::create("hlike").await;
        seed(&db).await;
        let before = count(&db, SUM).await;
        let srv = ProvServer::start(&db.config(), 0).await;
        let ep = Ast::new(&srv.url(), E1, "endpoint");
        // The issue's two requests, byte for byte: `destroy` with `id LIKE %`, `update` with `id LIKE=%`.
        assert_eq!(ep.post("destroy", "id%20LIKE=%25&".into()).await, (400, "-1".into()));
        assert_eq!(ep.post("update?id%20LIKE=%25", "context=owned".into()).await, (400, "-1".into()));
        for op in ["LIKE", "NOT LIKE", "!=", "<>", ">", ">=", "<", "<="] {
            let field = format!("id {op}");
            assert_eq!(ep.destroy(&field, "0", &[]).await, (400, "-1".into()), "destroy {field}");
            assert_eq!(ep.destroy("id", "1001", &[(&field, "%")]).await, (400, "-1".into()), "destroy condition {field}");
            assert_eq!(ep.update(&field, "0", &[("context", "owned")]).await, (400, "-1".into()), "update {field}");
        }
        assert_eq!(count(&db, SUM).await, before, "no row deleted or rewritten");
        // Exact matches still work, and only within the entity's tenant.
        assert_eq!(ep.update("id", "2001", &[("context", "owned")]).await, (200, "0".into()), "another tenant's row");
        assert_eq!(ep.post("update?id%20%3D=1001", "context=a2".into()).await, (200, "1".into()), "`id =` is exact");
        assert_eq!(ep.destroy("id", "1002", &[("context", "b")]).await, (200, "1".into()));
        assert_eq!(count(&db, ALL).await, 4);
        assert_eq!(count(&db, "SELECT count(*) FROM ps_endpoints WHERE context = 'owned'").await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_family_names_keep_metrics_bounded() {
    bounded(90, async {
        let db = TestDb::create("hfam").await;
        let srv = ProvServer::start(&db.config(), 0).await;
        let url = srv.url();
        let (u, p) = common::cred(E1).unwrap();
        let http = reqwest::Client::new();
        let send = |family: String| {
            let http = http.clone();
            let url = format!("{url}/provision/asterisk/{E1}/{family}/single");
            let (u, p) = (u.clone(), p.clone());
            async move {
                let r = http.post(url).basic_auth(u, Some(p)).body("id=1").send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        // The issue's injection, percent-encoded as a client sends it.
        let injected = encode("a\"} 1\nmware_active 1");
        assert_eq!(send(injected).await, (400, "".into()));
        let first = srv.metrics();
        for i in 0..150 {
            assert_eq!(send(format!("fam{i}")).await, (400, "".into()));
        }
        for hostile in ["%0Amware_active%201", "x%22%7D", "%E2%80%AE", "endpoint%00", &"z".repeat(2000)] {
            let (code, body) = send(hostile.to_string()).await;
            assert_eq!(code, 400, "{hostile}");
            assert_eq!(body, "");
        }
        let m = srv.metrics();
        let one = first.len();
        assert!(!m.lines().any(|l| l.starts_with("mware_active")), "no injected line:\n{m}");
        let families: std::collections::BTreeSet<&str> = m.lines().filter_map(|l| l.split("family=\"").nth(1)?.split('"').next()).collect();
        assert_eq!(families.into_iter().collect::<Vec<_>>(), ["other"], "only configured families or other");
        eprintln!("metrics text: {one} bytes after one hostile family, {} after 156", m.len());
        // Same series; only counters' digits grow.
        assert_eq!(m.lines().count(), first.lines().count(), "no new series:\n{first}\n---\n{m}");
        assert!(m.len() <= one + 100, "metrics did not grow with client input: {one} -> {}", m.len());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_in_an_integer_column_is_a_bad_request() {
    bounded(60, async {
        let db = TestDb::create("htype").await;
        seed(&db).await;
        let before = count(&db, SUM).await;
        let srv = ProvServer::start(&db.config(), 0).await;
        let ep = Ast::new(&srv.url(), E1, "endpoint");
        assert_eq!(ep.store(&[("id", "1005"), ("max_audio_streams", "two")]).await, (400, "-1".into()));
        assert_eq!(ep.single(&[("max_audio_streams", "two")]).await, (400, "".into()));
        assert_eq!(ep.multi(&[("max_audio_streams >", "99999999999")]).await, (400, "".into()), "out of range: 22003");
        assert_eq!(ep.update("id", "1001", &[("max_audio_streams", "1.5")]).await, (400, "-1".into()));
        assert_eq!(ep.update("id", "1001", &[("direct_media", "maybe")]).await, (400, "-1".into()), "not a value of the enum");
        assert_eq!(ep.store(&[("id", "1001")]).await, (400, "-1".into()), "duplicate key: 23505");
        assert_eq!(count(&db, SUM).await, before, "nothing written");
        let m = srv.metrics();
        assert!(!m.contains(r#"outcome="error""#), "no 500: {m}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_a_domain_column_is_refused_unless_shared() {
    bounded(60, async {
        let db = TestDb::create("hshared").await;
        seed(&db).await;
        let mut cfg = db.config();
        cfg.shared_families.clear();
        let srv = ProvServer::start(&cfg, 0).await;
        let aor = Ast::new(&srv.url(), E2, "aor");
        assert_eq!(aor.single(&[("id", "1001")]).await, (403, "".into()), "t1's aor is not shown to t2");
        assert_eq!(aor.destroy("id", "1001", &[]).await, (403, "-1".into()));
        assert_eq!(count(&db, "SELECT count(*) FROM ps_aors").await, 1);
        // Marked shared: every entity of the group sees it.
        let srv2 = ProvServer::start(&db.config(), 0).await;
        assert_eq!(Ast::new(&srv2.url(), E2, "aor").single(&[("id", "1001")]).await, (200, "id=1001&max_contacts=1\n".into()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_of_two_domains_sees_both_and_names_the_tenant_it_writes() {
    bounded(60, async {
        let db = TestDb::create("hmulti").await;
        seed(&db).await;
        let srv = ProvServer::start(&db.config(), 0).await;
        let m = Ast::new(&srv.url(), MULTI, "endpoint");
        assert_eq!(
            m.multi(&[("id LIKE", "%")]).await,
            (
                200,
                "id=1001&context=a&max_audio_streams=1\nid=1002&context=b&max_audio_streams=1\nid=1003&context=c&max_audio_streams=1\n"
                    .into()
            )
        );
        assert_eq!(m.store(&[("id", "1004")]).await, (400, "-1".into()), "which tenant? refused");
        assert_eq!(m.store(&[("id", "1004"), ("domain", "t2.example.ru")]).await, (400, "-1".into()), "not its tenant");
        assert_eq!(m.store(&[("id", "1004"), ("domain", "t3.example.ru")]).await, (200, "1".into()));
        assert_eq!(count(&db, "SELECT count(*) FROM ps_endpoints WHERE id = '1004' AND domain = 't3.example.ru'").await, 1);
    })
    .await;
}

#[test]
fn the_routing_rule_finds_the_group_listing_the_entity_and_nothing_else() {
    let site = serde_json::json!({
        "site": "s",
        "servers": [{"name": "a", "ifaces": {"lo": "127.0.0.1"}, "roles": [
            {"name": "g1", "roletype": "mware", "iface": "lo", "group": 1, "order": 1, "api_port": 9001},
            {"name": "g2", "roletype": "mware", "iface": "lo", "group": 2, "order": 1, "api_port": 9002,
             "include_domains": ["t1.example.ru"],
             "provisioning": {"dsn": "host=x", "entities": {E1: {"domains": ["t1.example.ru"], "user": "u", "password": "p"}}}}
        ]}]
    });
    let site = mware_config::validate(&site.to_string(), &mware_realtime::plugin().sections).unwrap().site;
    let tree = mware_config::DomainTree::build(&site);
    let r = |s: &str| mware_realtime::resolve_entity(&site, &tree, s);
    assert_eq!(r(E1), Ok((2, E1.to_string())));
    assert_eq!(r("12:34:56:78:9A:BC"), Ok((2, E1.to_string())), "any case");
    for unknown in ["aa:bb:cc:dd:ee:ff", "t1.example.ru", "nobody.example.org", "a\"} 1\nx"] {
        let (code, why) = r(unknown).unwrap_err();
        assert_eq!(code, 404, "{unknown}: {why}");
        assert!(!why.contains('\n'), "escaped: {why}");
    }
    let mut site2 = site.clone();
    for s in &mut site2.servers {
        for role in &mut s.roles {
            if let Some(mut p) = role.section::<mware_realtime::Provisioning>() {
                p.accept_domain_segment = true;
                role.sections.set(Some(p));
            }
        }
    }
    let tree2 = mware_config::DomainTree::build(&site2);
    assert_eq!(mware_realtime::resolve_entity(&site2, &tree2, "T1.example.ru."), Ok((2, "t1.example.ru".into())));
    assert_eq!(mware_realtime::resolve_entity(&site2, &tree2, "other.example.org").unwrap_err().0, 404, "group 1 does not take domains");
}
