//! The provisioning service against real PostgreSQL, driven by a client that
//! builds requests exactly as Asterisk's res_config_curl does; every answer is
//! compared byte for byte.

mod common;

use common::{bounded, Ast, ProvServer, TestDb, E1, E2};

/// The seed's entity id serves tenant t1.example.ru.
const T1: &str = "t1.example.ru";
const ALICE: &str = "id=1001&transport=transport-udp&aors=1001&auth=1001&context=from%20internal&disallow=all&allow=ulaw%2Calaw&direct_media=no&callerid=Alice%20%3C1001%3E\n";

async fn count(db: &TestDb, table: &str) -> i64 {
    db.client().await.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_res_config_curl_expects() {
    bounded(60, async {
        let db = TestDb::create("ops").await;
        let srv = ProvServer::start(&db.config(), 0).await;
        let ep = Ast::new(&srv.url(), E1, "endpoint");

        // store
        let alice = [
            ("id", "1001"), ("transport", "transport-udp"), ("aors", "1001"), ("auth", "1001"),
            ("context", "from internal"), ("disallow", "all"), ("allow", "ulaw,alaw"),
            ("direct_media", "no"), ("callerid", "Alice <1001>"),
        ];
        assert_eq!(ep.store(&alice).await, (200, "1".into()));
        assert_eq!(ep.store(&[("id", "1002"), ("context", "c2")]).await, (200, "1".into()));
        assert_eq!(ep.store(&[("id", "2001"), ("context", "c3"), ("max_audio_streams", "2")]).await, (200, "1".into()));

        // single: one line, NULL columns left out, domain implied by the URL
        assert_eq!(ep.single(&[("id", "1001")]).await, (200, ALICE.into()));
        assert_eq!(ep.single(&[("id", "9999")]).await, (200, "".into()), "not found is an empty 200");
        assert_eq!(ep.single(&[("max_audio_streams >=", "2")]).await, (200, "id=2001&context=c3&max_audio_streams=2\n".into()));

        // multi with LIKE (sorcery's retrieve_regex / retrieve_multiple), ordered by the first field
        assert_eq!(ep.multi(&[("id LIKE", "10%")]).await, (200, format!("{ALICE}id=1002&context=c2\n")));
        assert_eq!(ep.multi(&[("id LIKE", "%"), ("id !=", "1001")]).await, (200, "id=1002&context=c2\nid=2001&context=c3&max_audio_streams=2\n".into()));
        assert_eq!(ep.multi(&[("id LIKE", "3%")]).await, (200, "".into()));

        // update: key in the query string, fields in the body
        assert_eq!(ep.update("id", "1002", &[("context", "from-external"), ("direct_media", "yes")]).await, (200, "1".into()));
        assert_eq!(ep.single(&[("id", "1002")]).await, (200, "id=1002&context=from-external&direct_media=yes\n".into()));
        assert_eq!(ep.update("id", "nobody", &[("context", "x")]).await, (200, "0".into()));

        // destroy: `key=val&` then extra conditions
        assert_eq!(ep.destroy("id", "1002", &[]).await, (200, "1".into()));
        assert_eq!(ep.destroy("id", "2001", &[("context", "not-it")]).await, (200, "0".into()));
        assert_eq!(ep.single(&[("id", "1002")]).await, (200, "".into()));

        // require: 0 when every column exists, -1 otherwise
        assert_eq!(ep.require(&[("id", "char", 40), ("context", "char", 40)]).await, (200, "0".into()));
        assert_eq!(ep.require(&[("id", "char", 40), ("nosuch", "integer4", 4)]).await, (200, "-1".into()));

        // an unscoped table (no domain column) with numeric operators
        let aor = Ast::new(&srv.url(), E1, "aor");
        assert_eq!(aor.store(&[("id", "1001"), ("max_contacts", "1"), ("remove_existing", "yes")]).await, (200, "1".into()));
        assert_eq!(aor.store(&[("id", "1002"), ("max_contacts", "10")]).await, (200, "1".into()));
        assert_eq!(aor.multi(&[("max_contacts <", "5")]).await, (200, "id=1001&max_contacts=1&remove_existing=yes\n".into()));
        assert_eq!(aor.multi(&[("max_contacts >", "5")]).await, (200, "id=1002&max_contacts=10\n".into()));

        // static: category/cat_metric/var_name/var_val on every line, categories together
        let c = db.client().await;
        c.batch_execute(
            "INSERT INTO ast_config (cat_metric, var_metric, filename, category, var_name, var_val) VALUES \
             (0, 0, 'extensions.conf', 'general', 'static', 'yes'), \
             (0, 1, 'extensions.conf', 'general', 'writeprotect', 'no'), \
             (1, 0, 'extensions.conf', 'from internal', 'exten', '1000,1,Dial(PJSIP/${EXTEN})'), \
             (0, 0, 'other.conf', 'x', 'y', 'z');
             INSERT INTO ast_config (commented, filename, category, var_name, var_val) VALUES (1, 'extensions.conf', 'general', 'hidden', '1');",
        )
        .await
        .unwrap();
        let cfg = Ast::new(&srv.url(), E1, "config");
        assert_eq!(
            cfg.static_file("extensions.conf").await,
            (200, "category=from%20internal&cat_metric=1&var_name=exten&var_val=1000%2C1%2CDial(PJSIP%2F%24%7BEXTEN%7D)\n\
                   category=general&cat_metric=0&var_name=static&var_val=yes\n\
                   category=general&cat_metric=0&var_name=writeprotect&var_val=no\n".into())
        );
        assert_eq!(cfg.static_file("missing.conf").await, (200, "".into()));

        // tenants: another entity sees none of t1's scoped rows and cannot touch them
        let other = Ast::new(&srv.url(), E2, "endpoint");
        assert_eq!(other.single(&[("id", "1001")]).await, (200, "".into()));
        assert_eq!(other.destroy("id", "1001", &[]).await, (200, "0".into()));
        assert_eq!(other.store(&[("id", "1001"), ("domain", T1)]).await, (400, "-1".into()));
        assert_eq!(ep.single(&[("id", "1001")]).await, (200, ALICE.into()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_failure_answer_and_write_nothing() {
    bounded(60, async {
        let db = TestDb::create("bad").await;
        let mut srv = ProvServer::start(&db.config(), 0).await;
        let ep = Ast::new(&srv.url(), E1, "endpoint");
        assert_eq!(ep.store(&[("id", "1001"), ("context", "c")]).await, (200, "1".into()));

        for field in ["id; DROP TABLE ps_endpoints; --", "id = '1' OR '1'='1' --", "\"id\"", "id) OR (1=1", "nosuch"] {
            assert_eq!(ep.single(&[(field, "1001")]).await, (400, "".into()), "single {field:?}");
            assert_eq!(ep.multi(&[(field, "%")]).await, (400, "".into()), "multi {field:?}");
            assert_eq!(ep.store(&[("id", "1002"), (field, "x")]).await, (400, "-1".into()), "store {field:?}");
            assert_eq!(ep.update("id", "1001", &[(field, "x")]).await, (400, "-1".into()), "update {field:?}");
            assert_eq!(ep.destroy("id", "1001", &[(field, "x")]).await, (400, "-1".into()), "destroy {field:?}");
        }
        // unknown family, malformed %-encoding, oversized body
        let nosuch = Ast::new(&srv.url(), E1, "nosuch");
        assert_eq!(nosuch.single(&[("id", "1001")]).await, (400, "".into()));
        assert_eq!(nosuch.store(&[("id", "1001")]).await, (400, "-1".into()));
        assert_eq!(ep.post("single", "id=10%G1".into()).await, (400, "".into()));
        assert_eq!(ep.post("store", "id=1003&context=%E2%28".into()).await, (400, "-1".into()));
        let big = "x".repeat(5000);
        assert_eq!(ep.store(&[("id", "1004"), ("context", &big)]).await, (400, "-1".into()));
        // nothing was written, the table is intact
        assert_eq!(count(&db, "ps_endpoints").await, 1);
        assert_eq!(ep.single(&[("id", "1001")]).await, (200, "id=1001&context=c\n".into()));

        let m = srv.metrics();
        assert!(m.contains(r#"mware_provisioning_requests_total{family="endpoint",op="store",outcome="bad_request"} 7"#), "{m}");
        assert!(!m.contains("DROP"), "no request text in metric labels");

        // not running: 503 with the failure body, so a cache keeps what it has
        srv.handle.stop();
        assert_eq!(ep.single(&[("id", "1001")]).await, (503, "".into()));
        assert_eq!(ep.store(&[("id", "1005")]).await, (503, "-1".into()));
        assert_eq!(ep.require(&[("id", "char", 40)]).await, (503, "-1".into()));
        srv.kill().await;
        assert_eq!(count(&db, "ps_endpoints").await, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connection_never_shows_the_password() {
    bounded(30, async {
        let mut registry = prometheus_client::registry::Registry::default();
        let handle = mware_realtime::ProvisioningHandle::new(&mut registry);
        let port = mware_testkit::free_port();
        let cfg = mware_realtime::Provisioning {
            dsn: mware_config::Secret::new(format!("host=127.0.0.1 port={port} user=postgres password=hunter2 connect_timeout=2")),
            max_body_bytes: 4096,
            ..Default::default()
        };
        let err = handle.start(&cfg).await.expect_err("nothing listens there");
        let text = format!("{err} {err:?} {cfg:?}");
        assert!(text.contains("expected postgresql to answer"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!handle.is_running());
    })
    .await;
}
