//! The site file validator: each rule with a passing and a failing case, and
//! one file with many problems that must all be reported at once.

mod common;
use common::*;
use mware_config::Severity;
use mware_registry::validate;
use serde_json::json;

const R0: &str = "/servers/0/roles/0";

#[test]
fn base_site_is_valid() {
    let v = ok(&base());
    assert_eq!(v.site.site, "test");
    assert!(v.warnings.is_empty());
}

#[test]
fn malformed_json_gives_line_and_column() {
    let e = errors_text("{\n  \"site\": \"x\",\n  oops }");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path, "$");
    assert!(e[0].message.starts_with("malformed JSON at line 3, column 3: "), "{}", e[0]);
}

#[test]
fn top_level_types_and_keys() {
    only(&json!([]), "$", "expected an object, found a list");
    let mut v = base();
    set(&mut v, "/sitee", json!("x"));
    only(&v, "sitee", "unknown key \"sitee\"");
    let mut v = base();
    remove(&mut v, "/site");
    only(&v, "site", "required key \"site\"");
    let mut v = base();
    set(&mut v, "/site", json!("my site"));
    only(&v, "site", "found \"my site\"");
    let mut v = base();
    set(&mut v, "/servers", json!({}));
    has(&errors(&v), "servers", "expected a list, found an object");
}

#[test]
fn role_name_syntax() {
    for good in ["Mw2", "m", "mware10"] {
        let mut v = base();
        set(&mut v, &format!("{R0}/name"), json!(good));
        ok(&v);
    }
    for bad in ["1abc", "mware_1", "", "мвар"] {
        let mut v = base();
        set(&mut v, &format!("{R0}/name"), json!(bad));
        only(&v, "servers[0].roles[0].name", "expected latin letters and digits starting with a letter");
    }
}

#[test]
fn role_and_server_names_are_unique() {
    let mut v = base();
    set(&mut v, "/servers/0/roles/1", role("mware1", 1, 20, &[]));
    set(&mut v, "/servers/0/roles/1/api_port", json!(8272));
    only(&v, "servers[0].roles[1].name", "unique in the site, found \"mware1\" again (first at servers[0].roles[0].name)");
    set(&mut v, "/servers/0/roles/1/name", json!("mware2"));
    ok(&v);

    let mut v = base();
    set(&mut v, "/servers/1", json!({"name": "srv1", "ifaces": {"eth0": "127.0.0.2"}}));
    only(&v, "servers[1].name", "expected a server name unique in the site, found \"srv1\" again");
    set(&mut v, "/servers/1/name", json!("srv2"));
    ok(&v);
}

#[test]
fn roletype_is_mware() {
    let mut v = base();
    set(&mut v, &format!("{R0}/roletype"), json!("mic"));
    only(&v, "servers[0].roles[0].roletype", "expected \"mware\", found \"mic\"");
}

#[test]
fn iface_is_an_alias_with_an_ip_address() {
    let mut v = base();
    set(&mut v, &format!("{R0}/iface"), json!("eth1"));
    ok(&v);
    set(&mut v, &format!("{R0}/iface"), json!("eth9"));
    only(&v, "servers[0].roles[0].iface", "expected an interface alias of this server (eth0, eth1), found \"eth9\"");
    let mut v = base();
    set(&mut v, "/servers/0/ifaces/eth0", json!("300.1.1.1"));
    only(&v, "servers[0].ifaces.eth0", "expected an IP address, found \"300.1.1.1\"");
}

#[test]
fn group_range() {
    let mut v = base();
    set(&mut v, &format!("{R0}/group"), json!(9_999_999));
    ok(&v);
    set(&mut v, &format!("{R0}/group"), json!(0));
    let e = errors(&v);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].to_string(), "servers[0].roles[0].group: expected an integer from 1 to 9999999, found 0");
    for bad in [json!(10_000_000), json!("5"), json!(1.5), json!(null)] {
        set(&mut v, &format!("{R0}/group"), bad.clone());
        only(&v, "servers[0].roles[0].group", &format!("found {}", bad));
    }
}

#[test]
fn order_is_unique_within_its_group() {
    let mut v = base();
    set(&mut v, "/servers/0/roles/1", role("mware2", 1, 10, &[]));
    set(&mut v, "/servers/0/roles/1/iface", json!("eth1"));
    only(&v, "servers[0].roles[1].order", "expected an order unique within group 1, found 10 again");
    set(&mut v, "/servers/0/roles/1/order", json!(20));
    ok(&v);
    // The same order in another group is fine.
    set(&mut v, "/servers/0/roles/1", role("mware2", 2, 10, &["a.example"]));
    set(&mut v, "/servers/0/roles/1/iface", json!("eth1"));
    ok(&v);
}

#[test]
fn disabled_roles_are_not_validated() {
    let mut v = base();
    set(&mut v, "/servers/0/roles/1", json!({"enabled": false, "name": "1bad", "group": 0, "whatever": true}));
    let val = ok(&v);
    assert_eq!(val.site.servers[0].roles.len(), 1, "an unparsable disabled role is left out");
    assert!(val.warnings.iter().any(|w| w.path == "servers[0].roles[1]"));
    // A parsable disabled role stays in the site but is not an instance.
    set(&mut v, "/servers/0/roles/1", role("mware1", 1, 10, &[]));
    set(&mut v, "/servers/0/roles/1/enabled", json!(false));
    let val = ok(&v);
    assert_eq!(val.site.servers[0].roles.len(), 2);
    assert_eq!(val.site.instances().count(), 1);
    // `enabled` itself must be a boolean.
    set(&mut v, "/servers/0/roles/1/enabled", json!("no"));
    has(&errors(&v), "servers[0].roles[1].enabled", "expected true or false, found \"no\"");
}

#[test]
fn unknown_keys_everywhere_but_opts() {
    let mut v = base();
    set(&mut v, &format!("{R0}/opts"), json!({"anything": [1, {"goes": true}]}));
    ok(&v);
    set(&mut v, &format!("{R0}/opts"), json!(["a", 1]));
    ok(&v);
    set(&mut v, &format!("{R0}/opts"), json!(5));
    only(&v, "servers[0].roles[0].opts", "expected an object or a list, found 5");
    let mut v = base();
    set(&mut v, &format!("{R0}/grup"), json!(1));
    only(&v, "servers[0].roles[0].grup", "found unknown key \"grup\"");
    let mut v = base();
    set(&mut v, "/servers/0/rolez", json!([]));
    only(&v, "servers[0].rolez", "unknown key");
    let mut v = base();
    set(&mut v, "/api", json!({"token": "x"}));
    only(&v, "api.token", "unknown key");
}

#[test]
fn api_token_env_is_a_variable_name() {
    let mut v = base();
    set(&mut v, "/api", json!({"token_env": "MY_TOKEN_2", "drain_timeout_ms": 500}));
    ok(&v);
    set(&mut v, "/api/token_env", json!("my token"));
    only(&v, "api.token_env", "expected an environment variable name");
}

#[test]
fn api_operator_token_env_is_another_variable_name() {
    let mut v = base();
    set(&mut v, "/api", json!({"token_env": "SCRIPTS_TOKEN", "operator_token_env": "OPS_TOKEN"}));
    ok(&v);
    set(&mut v, "/api/operator_token_env", json!("ops-token"));
    only(&v, "api.operator_token_env", "expected an environment variable name");
    set(&mut v, "/api/operator_token_env", json!("SCRIPTS_TOKEN"));
    only(&v, "api.operator_token_env", "expected another variable than token_env");
}

#[test]
fn ssh_host_key_settings() {
    let v = ok(&base());
    assert_eq!(v.site.ssh.known_hosts, "var/known_hosts", "default known_hosts file");
    assert!(!v.site.ssh.trust_on_first_use, "unknown hosts are refused by default");
    let mut v = base();
    set(&mut v, "/ssh", json!({"known_hosts": "/etc/mware/known_hosts", "trust_on_first_use": true}));
    let s = ok(&v).site.ssh;
    assert_eq!((s.known_hosts.as_str(), s.trust_on_first_use), ("/etc/mware/known_hosts", true));
    set(&mut v, "/ssh", json!({"known_hosts": "", "trust_on_first_use": "yes", "strict": 1}));
    let e = errors(&v);
    has(&e, "ssh.known_hosts", "expected a non-empty string");
    has(&e, "ssh.trust_on_first_use", "expected true or false, found \"yes\"");
    has(&e, "ssh.strict", "unknown key");
    assert_eq!(e.len(), 3, "{}", show(&e));
    set(&mut v, "/ssh", json!({"known_hosts": "/etc/mware/"}));
    only(&v, "ssh.known_hosts", "expected a file path, found \"/etc/mware/\"");
    set(&mut v, "/ssh", json!(["var/known_hosts"]));
    only(&v, "ssh", "expected an object, found a list");
}

#[test]
fn api_port_clashes_on_one_address() {
    let mut v = base();
    set(&mut v, "/servers/0/roles/1", role("mware2", 2, 10, &["a.example"]));
    only(
        &v,
        "servers[0].roles[1].api_port",
        "expected an api_port not used by another instance on 127.0.0.1, found 8271 also used by servers[0].roles[0]",
    );
    set(&mut v, "/servers/0/roles/1/api_port", json!(8272));
    ok(&v);
    set(&mut v, "/servers/0/roles/1/api_port", json!(8271));
    set(&mut v, "/servers/0/roles/1/iface", json!("eth1"));
    ok(&v);
    set(&mut v, "/servers/0/roles/1/api_port", json!(0));
    only(&v, "servers[0].roles[1].api_port", "expected an integer from 1 to 65535, found 0");
    // Another server on another address may use the same port.
    let mut v = base();
    set(&mut v, "/servers/1", json!({"name": "srv2", "ifaces": {"eth0": "127.0.0.2"}, "roles": [role("mware2", 1, 20, &[])]}));
    ok(&v);
}

#[test]
fn coordination_rules() {
    let mut v = base();
    set(
        &mut v,
        "/coordination",
        json!({"backend": "etcd", "endpoints": ["http://127.0.0.1:2379"], "lease_ttl_ms": 2000, "step_down_margin_ms": 999}),
    );
    ok(&v);
    set(&mut v, "/coordination/backend", json!("zk"));
    only(&v, "coordination.backend", "expected \"embedded\" or \"etcd\", found \"zk\"");
    let mut v = base();
    set(&mut v, "/coordination", json!({"backend": "etcd"}));
    only(&v, "coordination.endpoints", "expected at least one etcd endpoint");
    set(&mut v, "/coordination/endpoints", json!(["127.0.0.1:2379"]));
    only(&v, "coordination.endpoints[0]", "expected an endpoint URL");
    set(&mut v, "/coordination/endpoints", json!(["http://root:hunter22@127.0.0.1:2379"]));
    only(&v, "coordination.endpoints[0]", "expected no credentials in the endpoint URL");
    assert!(!show(&errors(&v)).contains("hunter22"));
    let mut v = base();
    set(&mut v, "/coordination", json!({"lease_ttl_ms": 400, "step_down_margin_ms": 100}));
    only(&v, "coordination.lease_ttl_ms", "expected an integer from 500 to 3600000, found 400");
    set(&mut v, "/coordination", json!({"step_down_margin_ms": 1500}));
    only(&v, "coordination.step_down_margin_ms", "less than half of lease_ttl_ms (3000 ms) so an active instance still has time to renew");
    set(&mut v, "/coordination", json!({"step_down_margin_ms": 1499}));
    ok(&v);
}

#[test]
fn tls_only_with_https() {
    let mut v = base();
    let tls = json!({"ca_file": "/etc/etcd/ca.pem", "cert_file": "/etc/etcd/c.pem", "key_file": "/etc/etcd/k.pem"});
    set(&mut v, "/coordination", json!({"backend": "etcd", "endpoints": ["https://etcd1:2379"], "tls": tls}));
    ok(&v);
    set(&mut v, "/coordination/endpoints", json!(["https://etcd1:2379", "http://etcd2:2379"]));
    only(&v, "coordination.tls", "expected tls only with backend \"etcd\" and https:// endpoints");
    set(&mut v, "/coordination/endpoints", json!(["https://etcd1:2379"]));
    remove(&mut v, "/coordination/tls/key_file");
    only(&v, "coordination.tls", "cert_file and key_file together");
    remove(&mut v, "/coordination/tls");
    only(&v, "coordination.tls", "expected a tls section with ca_file for https:// endpoints");
}

#[test]
fn backup_controller_rules() {
    let mut v = base();
    let seed_a = json!({"hours_interval": [20, 3], "weekdays": [2, 4, 7],
        "sync_folder": {"path": "/srv/sync", "send_mode": "rsync", "excluded_paths": ["**/common/temp/*"], "storage_ssh_host": "storage.local",
                        "storage_ssh_port": 8022, "storage_ssh_user": "u", "storage_ssh_pwd": "example", "storage_ssh_path": "backup/dow_%weekday"},
        "pgdb": [{"servers": [{"ssh_host": "10.0.0.1", "pg_host": "10.0.0.1"}, {"pg_host": "10.0.0.2"}], "ssh_port": 9022, "ssh_user": "postgres",
                  "ssh_pwd": "example", "pg_port": 5420, "pg_replica_user": "r", "pg_replica_pwd": "example", "storage_ssh_host": "storage.local",
                  "storage_ssh_user": "u", "storage_ssh_pwd": "example"}]});
    set(&mut v, &format!("{R0}/backup_controller"), seed_a);
    ok(&v);
    let seed_b = json!({"hours_interval": [20, 3], "weekdays": [1, 2, 3, 4, 5, 6, 7], "storage_ssh_host": "storage.local", "storage_ssh_port": 8022,
        "storage_ssh_user": "u", "storage_ssh_pwd": "example", "storage_ssh_path": "backup/dow_%weekday",
        "sync_folder": {"path": "/srv/sync", "send_mode": "zip", "excluded_paths": []},
        "pgdb": [{"servers": [{"ssh_host": "10.0.0.1"}], "ssh_pwd": "example", "pg_replica_user": "r", "pg_replica_pwd": "example"}]});
    set(&mut v, &format!("{R0}/backup_controller"), seed_b);
    ok(&v);

    let b = "servers[0].roles[0].backup_controller";
    let cases = [
        ("/hours_interval", json!([24, 3]), format!("{b}.hours_interval[0]"), "expected an integer from 0 to 23, found 24"),
        ("/hours_interval", json!([20]), format!("{b}.hours_interval"), "expected two hours [from, to], found a list of 1"),
        ("/weekdays", json!([1, 1]), format!("{b}.weekdays[1]"), "expected each weekday once, found 1 again"),
        ("/weekdays", json!([8]), format!("{b}.weekdays[0]"), "expected an integer from 1 to 7, found 8"),
        ("/sync_folder/send_mode", json!("ftp"), format!("{b}.sync_folder.send_mode"), "expected \"rsync\" or \"zip\", found \"ftp\""),
        ("/storage_ssh_port", json!(70000), format!("{b}.storage_ssh_port"), "expected an integer from 1 to 65535"),
        ("/pgdb/0/servers/0", json!({}), format!("{b}.pgdb[0].servers[0]"), "expected ssh_host or pg_host, found neither"),
        ("/sync_folder/path", json!("srv/sync"), format!("{b}.sync_folder.path"), "expected an absolute folder path, found \"srv/sync\""),
        ("/pgdb/0/key", json!("sync"), format!("{b}.pgdb[0].key"), "not \"sync\", found \"sync\""),
        ("/pgdb/0/key", json!("a b"), format!("{b}.pgdb[0].key"), "expected up to 64 latin letters"),
        ("/pgdb/0/pg_config_folder", json!("etc/pg"), format!("{b}.pgdb[0].pg_config_folder"), "expected an absolute folder path"),
        ("/compress_level", json!(0), format!("{b}.compress_level"), "expected an integer from 1 to 9, found 0"),
    ];
    for (ptr, val, path, msg) in cases {
        let mut w = v.clone();
        set(&mut w, &format!("{R0}/backup_controller{ptr}"), val);
        only(&w, &path, msg);
    }
    // What a run needs is checked here too (the same plan the service builds), so a file
    // that validates never fails at run time for its backup section.
    let mut w = v.clone();
    remove(&mut w, &format!("{R0}/backup_controller/storage_ssh_pwd"));
    let e = errors(&w);
    assert_eq!(e.len(), 2, "{}", show(&e));
    has(&e, &format!("{b}.pgdb[0]"), "expected storage_ssh_pwd here or at the top of backup_controller, found none");
    has(&e, &format!("{b}.sync_folder"), "expected storage_ssh_pwd here or at the top of backup_controller, found none");
    let mut w = v.clone();
    remove(&mut w, &format!("{R0}/backup_controller/pgdb/0/pg_replica_user"));
    only(&w, &format!("{b}.pgdb[0].pg_replica_user"), "expected the replication user pg_basebackup logs in as, found none");
    // sync_folder.path (new) may be left out, as the seed's examples do: :SYNC is then
    // the platform's folder, /srv/sync.
    let mut w = v.clone();
    remove(&mut w, &format!("{R0}/backup_controller/sync_folder/path"));
    ok(&w);
    let site = mware_registry::validate(&w.to_string()).unwrap().site;
    let role = &site.servers[0].roles[0];
    let bc = role.section::<mware_backup::BackupController>().unwrap();
    let sync = bc.sync_folder.as_ref().unwrap();
    assert_eq!((sync.path.as_deref(), sync.path()), (None, mware_backup::DEFAULT_SYNC_PATH));
    assert_eq!(mware_backup::DEFAULT_SYNC_PATH, "/srv/sync");
    // pgdb keys (new, default db1, db2...) are unique.
    let mut w = v.clone();
    set(&mut w, &format!("{R0}/backup_controller/pgdb/1"), json!({"key": "db1", "servers": [{"pg_host": "h"}]}));
    only(&w, &format!("{b}.pgdb[1].key"), "expected a key no other pgdb entry has, found \"db1\" again");
    // Without a storage host at the top, each copy needs its own.
    remove(&mut v, &format!("{R0}/backup_controller/storage_ssh_host"));
    let e = errors(&v);
    has(&e, &format!("{b}.sync_folder.storage_ssh_host"), "expected a storage host here or at the top of backup_controller");
    has(&e, &format!("{b}.pgdb[0].storage_ssh_host"), "expected a storage host here");
    assert_eq!(e.len(), 2, "{}", show(&e));
}

#[test]
fn cti_adapters_rules() {
    let mut v = base();
    set(
        &mut v,
        &format!("{R0}/cti_adapters"),
        json!([{"key": "Stc.Cti", "iface": "default", "port": 9794}, {"key": "Other", "iface": "eth1", "port": 9795}]),
    );
    ok(&v);
    let p = "servers[0].roles[0].cti_adapters[1]";
    for (k, val, msg) in [
        ("key", json!(""), "expected a non-empty string"),
        ("iface", json!("eth7"), "expected \"default\" or an interface alias of this server, found \"eth7\""),
        ("port", json!(0), "expected an integer from 1 to 65535, found 0"),
    ] {
        let mut w = v.clone();
        set(&mut w, &format!("{R0}/cti_adapters/1/{k}"), val);
        only(&w, &format!("{p}.{k}"), msg);
    }
}

#[test]
fn critical_sections_and_provisioning() {
    let mut v = base();
    set(&mut v, &format!("{R0}/critical_sections"), json!({"max_waiters_per_mutex": 5}));
    set(
        &mut v,
        &format!("{R0}/provisioning"),
        json!({"dsn": "host=127.0.0.1 password=example-secret", "families": {"endpoint": "public.ps_endpoints"}}),
    );
    ok(&v);
    let mut w = v.clone();
    set(&mut w, &format!("{R0}/critical_sections/max_waiters_per_mutex"), json!(0));
    only(&w, "servers[0].roles[0].critical_sections.max_waiters_per_mutex", "expected an integer of at least 1, found 0");
    let mut w = v.clone();
    set(&mut w, &format!("{R0}/provisioning/families/endpoint"), json!("ps; drop table x"));
    only(&w, "servers[0].roles[0].provisioning.families.endpoint", "expected a table name");
    let mut w = v.clone();
    remove(&mut w, &format!("{R0}/provisioning/dsn"));
    only(&w, "servers[0].roles[0].provisioning.dsn", "required key");
}

#[test]
fn secrets_are_never_shown() {
    let mut v = base();
    set(&mut v, &format!("{R0}/provisioning"), json!({"dsn": 987654321}));
    set(
        &mut v,
        &format!("{R0}/backup_controller"),
        json!({"storage_ssh_host": "s", "storage_ssh_pwd": 123456789, "pgdb": [{"servers": [{"pg_host": "h"}], "ssh_pwd": 55555555}]}),
    );
    set(&mut v, "/coordination", json!({"user": "u", "password": 44444444}));
    let e = errors(&v);
    assert_eq!(e.len(), 4, "{}", show(&e));
    let text = show(&e);
    for secret in ["987654321", "123456789", "55555555", "44444444"] {
        assert!(!text.contains(secret), "secret {secret} leaked:\n{text}");
    }
    has(&e, "servers[0].roles[0].provisioning.dsn", "expected a string (a secret), found a number");
}

#[test]
fn pg_controller_problems_are_warnings() {
    let mut v = base();
    set(&mut v, &format!("{R0}/pg_controller"), json!([{"key": "g", "servers": [{"pg_host": "db1"}]}]));
    let val = ok(&v);
    assert!(val.warnings.iter().all(|w| w.severity == Severity::Warning));
    assert!(val
        .warnings
        .iter()
        .any(|w| w.path == "servers[0].roles[0].pg_controller[0].servers" && w.message.contains("exactly two servers")));
    assert!(val.warnings.iter().any(|w| w.path == "servers[0].roles[0].pg_controller[0].servers[0].ssh_user"));
    assert_eq!(
        val.site.servers[0].roles[0].section::<mware_pgctl::PgController>().unwrap().0.len(),
        1,
        "the raw list is kept for the controller"
    );
    // It must still be a list.
    set(&mut v, &format!("{R0}/pg_controller"), json!({}));
    only(&v, "servers[0].roles[0].pg_controller", "expected a list, found an object");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = json!({
        "site": "bad site",
        "colour": "blue",
        "coordination": {"backend": "etcd", "lease_ttl_ms": 1000, "step_down_margin_ms": 600},
        "ssh": {"known_hosts": 7},
        "servers": [
            {"name": "srv1", "ifaces": {"eth0": "127.0.0.1", "eth1": "not-an-ip"},
             "roles": [
                {"name": "1st", "roletype": "mic", "iface": "eth9", "group": 0, "order": 10},
                {"name": "ok1", "roletype": "mware", "iface": "eth0", "group": 2, "order": 10, "include_domains": ["a..b", "x.ru"]},
                {"name": "ok2", "roletype": "mware", "iface": "eth0", "group": 3, "order": 10, "include_domains": ["X.RU."], "api_port": 8271},
                {"name": "ok2", "roletype": "mware", "iface": "eth0", "group": 3, "order": 10, "include_domains": ["y.ru"], "api_port": 9000,
                 "backup_controller": {"weekdays": [9]}, "cti_adapters": [{"key": "k", "iface": "eth0", "port": 70000}]}
             ]},
            {"name": "srv1", "ifaces": {}}
        ]
    })
    .to_string();
    let e = match validate(&text) {
        Err(e) => e,
        Ok(_) => panic!("must fail"),
    };
    let expect = [
        ("site", "found \"bad site\""),
        ("colour", "unknown key"),
        ("coordination.endpoints", "at least one etcd endpoint"),
        ("coordination.step_down_margin_ms", "less than half"),
        ("ssh.known_hosts", "expected a string, found 7"),
        ("servers[0].ifaces.eth1", "expected an IP address"),
        ("servers[0].roles[0].name", "starting with a letter"),
        ("servers[0].roles[0].roletype", "expected \"mware\""),
        ("servers[0].roles[0].iface", "found \"eth9\""),
        ("servers[0].roles[0].group", "found 0"),
        ("servers[0].roles[1].include_domains[0]", "empty label"),
        ("servers[0].roles[2].api_port", "also used by servers[0].roles[1]"),
        ("servers[0].roles[2].include_domains[0]", "named by one group only"),
        ("servers[0].roles[3].name", "unique in the site"),
        ("servers[0].roles[3].order", "unique within group 3"),
        ("servers[0].roles[3].include_domains", "expected the same include_domains as servers[0].roles[2]"),
        ("servers[0].roles[3].backup_controller.weekdays[0]", "from 1 to 7"),
        ("servers[0].roles[3].cti_adapters[0].port", "from 1 to 65535"),
        ("servers[1].name", "unique in the site"),
        // ok2's twin carries sections ok2 does not: a group's members carry the same ones.
        ("servers[0].roles[3].backup_controller", "expected the same as servers[0].roles[2] (ok2)"),
        ("servers[0].roles[3].cti_adapters", "expected the same as servers[0].roles[2] (ok2)"),
    ];
    for (path, frag) in expect {
        has(&e, path, frag);
    }
    assert_eq!(e.len(), expect.len(), "unexpected extra problems:\n{}", show(&e));
}

#[test]
fn members_of_a_group_carry_the_same_service_sections() {
    let mut v = base();
    let mut m2 = role("mware2", 1, 20, &[]);
    let pg =
        json!([{"key": "main", "servers": [{"pg_host": "db1", "ssh_pwd": "secret-one"}, {"pg_host": "db2", "ssh_pwd": "secret-two"}]}]);
    set(&mut v, &format!("{R0}/pg_controller"), pg.clone());
    set(&mut v, &format!("{R0}/critical_sections"), json!({"enabled": true, "max_ttl_ms": 60000}));
    let mut pg2 = pg.clone();
    pg2[0]["servers"][1]["ssh_pwd"] = json!("secret-other");
    pg2[0]["servers"][0]["pg_host"] = json!("db9");
    m2["pg_controller"] = pg2;
    m2["critical_sections"] = json!({"enabled": true, "max_ttl_ms": 1000});
    m2["provisioning"] = json!({"dsn": "host=x"});
    m2["opts"] = json!({"own": 1});
    m2["api_port"] = json!(8272);
    set(&mut v, "/servers/0/roles/1", m2);
    let e = errors(&v);
    let paths: Vec<&str> = e.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "servers[0].roles[1].critical_sections.max_ttl_ms",
            "servers[0].roles[1].pg_controller[0].servers[0].pg_host",
            "servers[0].roles[1].pg_controller[0].servers[1].ssh_pwd",
            "servers[0].roles[1].provisioning",
        ],
        "{e:?}"
    );
    has(
        &e,
        "servers[0].roles[1].provisioning",
        "expected the same as servers[0].roles[0] (mware1): group 1's services run on whichever member is active",
    );
    has(&e, "servers[0].roles[1].provisioning", "found it here only");
    for p in &e {
        for s in ["secret-one", "secret-two", "secret-other", "db9"] {
            assert!(!p.message.contains(s), "a value in the message: {p}");
        }
    }
    // A member's own keys may differ; a disabled member is not compared.
    let mut v = base();
    let mut m2 = role("mware2", 1, 20, &[]);
    m2["api_port"] = json!(9000);
    m2["opts"] = json!({"x": 1});
    set(&mut v, "/servers/0/roles/1", m2);
    let mut m3 = role("mware3", 1, 30, &[]);
    m3["enabled"] = json!(false);
    m3["api_port"] = json!(9001);
    m3["critical_sections"] = json!({"enabled": false});
    set(&mut v, "/servers/0/roles/2", m3);
    ok(&v);
}

#[test]
fn duplicate_keys_in_the_site_file_are_refused_with_their_paths() {
    let text = r#"{"site": "t", "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [
        {"name": "m1", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "include_domains": ["a.ru"], "include_domains": []}]}],
        "site": "u"}"#;
    let e = validate(text).unwrap_err();
    let paths: Vec<&str> = e.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["servers[0].roles[0].include_domains", "site"], "{e:?}");
    assert!(e[0].message.contains("expected each key once in its object, found it again"), "{}", e[0]);
}

#[test]
fn api_limits_and_the_longest_mutex_wait() {
    let mut v = base();
    set(&mut v, "/api", json!({"header_read_timeout_ms": 0, "idle_timeout_ms": "x", "max_connections": 0}));
    let e = errors(&v);
    has(&e, "api.header_read_timeout_ms", "found 0");
    has(&e, "api.idle_timeout_ms", "found \"x\"");
    has(&e, "api.max_connections", "found 0");
    // A wait the request timeout would cut is refused, naming both.
    let mut v = base();
    set(&mut v, "/api", json!({"request_timeout_ms": 30000}));
    set(&mut v, &format!("{R0}/critical_sections"), json!({"max_wait_ms": 30000}));
    only(&v, "servers[0].roles[0].critical_sections.max_wait_ms", "expected less than api.request_timeout_ms (30000 ms)");
    set(&mut v, &format!("{R0}/critical_sections"), json!({"max_wait_ms": 29000, "max_domains": 0, "max_limit": 2000000}));
    let e = errors(&v);
    has(&e, "servers[0].roles[0].critical_sections.max_domains", "found 0");
    has(&e, "servers[0].roles[0].critical_sections.max_limit", "found 2000000");
}

#[test]
fn api_allowed_hosts_entries_are_checked() {
    let mut v = base();
    set(&mut v, "/api", json!({"allowed_hosts": ["mware.example.net", "10.0.0.1:8271", "[::1]", "[::1]:80", "::1", "localhost."]}));
    let site = ok(&v).site;
    assert_eq!(site.api.allowed_hosts.as_ref().map(Vec::len), Some(6));
    set(&mut v, "/api", json!({"allowed_hosts": ["a b", "h:0", "h:x", "[zz]", "[::1]x", "", 5]}));
    let problems = errors(&v);
    for i in 0..7 {
        let path = format!("api.allowed_hosts[{i}]");
        assert!(problems.iter().any(|p| p.path == path), "{path} missing: {problems:?}");
    }
}
