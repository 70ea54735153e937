//! The seeds' own examples (copied verbatim into `tests/seeds/`) validate inside a
//! site's envelope, and mean what the seed says.

use mware_config::Site;
use mware_registry::validate;

fn seed(name: &str) -> String {
    let path = format!("{}/tests/seeds/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The site file around a whole role example.
fn with_role(role: &str) -> String {
    seed("envelope.json").replace("@ROLE@", role.trim_end())
}

/// The site file around one value example, under `key` of a minimal role.
fn with_value(key: &str, value: &str) -> String {
    let role =
        format!(r#"{{"name": "mware1", "roletype": "mware", "iface": "eth0", "group": 1, "order": 10, "{key}": {}}}"#, value.trim_end());
    with_role(&role)
}

fn valid(text: &str) -> Site {
    let v = validate(text).unwrap_or_else(|e| panic!("{e:#?}\n{text}"));
    assert!(v.warnings.is_empty(), "{:#?}", v.warnings);
    v.site
}

#[test]
fn the_role_examples_validate() {
    for (file, group, servers) in [("000_role.json", 981001, "192.168.0.123"), ("001_role.json", 11120, "192.168.0.123")] {
        let site = valid(&with_role(&seed(file)));
        let role = &site.instance("mware2").unwrap_or_else(|| panic!("{file}: mware2")).role;
        assert_eq!((role.group, role.order), (group, 10), "{file}");
        let (pg, w) = mware_pgctl::parse_groups(&role.section::<mware_pgctl::PgController>().unwrap_or_default().0, "pg_controller");
        assert!(w.is_empty() && pg.len() == 1 && pg[0].servers.len() == 2, "{file}: {w:?}");
        assert_eq!(pg[0].servers[0].ssh_host.as_deref(), Some(servers), "{file}");
    }
}

#[test]
fn the_role_example_with_backup_controller_backs_up_the_platform_sync_folder() {
    let site = valid(&with_role(&seed("001_role.json")));
    let b = site.instance("mware2").unwrap().role.section::<mware_backup::BackupController>().expect("backup_controller");
    let sync = b.sync_folder.expect("sync_folder");
    assert_eq!(sync.path(), "/srv/sync");
    assert_eq!(sync.excluded_paths, ["**/common/fax/*", "**/some_temp_files/*"]);
    assert_eq!((b.hours_interval, b.weekdays.len(), b.pgdb.len()), (vec![20, 3], 7, 1));
}

#[test]
fn the_pg_controller_example_validates() {
    let site = valid(&with_value("pg_controller", &seed("001_pg_controller.json")));
    let role = &site.instance("mware1").unwrap().role;
    let (pg, w) = mware_pgctl::parse_groups(&role.section::<mware_pgctl::PgController>().unwrap_or_default().0, "pg_controller");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(pg.len(), 1);
    assert_eq!(pg[0].key.as_deref(), Some("general"));
    let hosts: Vec<_> = pg[0].servers.iter().map(|s| (s.pg_host.clone(), s.pg_port)).collect();
    assert_eq!(hosts, [(Some("db1.local".into()), 5441), (Some("db2.local".into()), 5441)]);
}

#[test]
fn the_backup_controller_example_validates() {
    let site = valid(&with_value("backup_controller", &seed("001_backup_controller.json")));
    let b = site.instance("mware1").unwrap().role.section::<mware_backup::BackupController>().expect("backup_controller");
    assert_eq!(b.weekdays, [2, 4, 7]);
    let sync = b.sync_folder.expect("sync_folder");
    assert_eq!((sync.path.as_deref(), sync.path()), (None, "/srv/sync"));
    assert_eq!(sync.storage_ssh_host.as_deref(), Some("storage.local"));
    assert_eq!(b.pgdb[0].servers.len(), 2);
}

#[test]
fn the_cti_adapters_example_validates() {
    let site = valid(&with_value("cti_adapters", &seed("001_cti_adapters.json")));
    let cti = &site.instance("mware1").unwrap().role.cti_adapters;
    assert_eq!(cti.len(), 1);
    assert_eq!((cti[0].iface.as_str(), cti[0].port), ("default", 9794));
}

/// The files are the seed's text: each one's JSON, minus the seed's `, ...`, is found in the
/// seed with the same spacing (a guard against a "tidied" copy).
#[test]
fn the_fixtures_are_verbatim_copies_of_the_seed() {
    let seeds = format!("{}/../../../shared/seeds", env!("CARGO_MANIFEST_DIR"));
    let Ok(en) = std::fs::read_to_string(format!("{seeds}/001_41f02cfe24c2c567.txt")) else {
        eprintln!("skipped: the seeds are not beside the repository ({seeds})");
        return;
    };
    let ru = std::fs::read_to_string(format!("{seeds}/000_fdcdea4a51e04835.txt")).unwrap();
    for (file, text) in [("000_role.json", &ru), ("001_role.json", &en), ("001_cti_adapters.json", &en)] {
        assert!(text.contains(seed(file).trim_end()), "{file} differs from the seed");
    }
    for file in ["001_pg_controller.json", "001_backup_controller.json"] {
        let f = seed(file);
        let f = f.trim_end();
        let at = f.rfind("} ]").expect("a list's end");
        let with_ellipsis = format!("{}}}, ... ]{}", &f[..at], &f[at + 3..]);
        assert!(en.contains(&with_ellipsis), "{file} differs from the seed");
    }
}
