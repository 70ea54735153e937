//! The `acme` section: the example validates and parses; a wrong file gets every problem
//! with its path, secrets never shown.

use mware_acme::{plugin, Acme, Challenge, KeyType};

fn example() -> String {
    std::fs::read_to_string(format!("{}/../../../examples/acme.json", env!("CARGO_MANIFEST_DIR"))).expect("examples/acme.json")
}

#[test]
fn the_example_validates_and_parses() {
    let v = mware_config::validate(&example(), &plugin().sections).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(v.warnings.is_empty(), "{:#?}", v.warnings);
    let a: Acme = v.site.instance("mware1").unwrap().role.section::<Acme>().expect("acme section");
    assert_eq!(a.http01.port, 8080);
    assert_eq!(a.certificates.len(), 2);
    assert_eq!(a.certificates[0].key_type, KeyType::EcdsaP256);
    assert_eq!(a.certificates[1].challenge, Challenge::Dns01);
    assert_eq!(a.renew_days(&a.certificates[1]), 20);
    assert_eq!(a.certificates[0].targets[0].key_mode, "0640");
    assert_eq!(a.certificates[0].targets[0].port, 22);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let mut j: serde_json::Value = serde_json::from_str(&example()).unwrap();
    let a = &mut j["servers"][0]["roles"][0]["acme"];
    a["directory_url"] = "http://ca.example/dir".into();
    a["alarm_before_days"] = 40.into();
    a["contact"] = serde_json::json!(["noc@example.ru"]);
    a["dns01"]["server"] = "ns1".into();
    let c = &mut a["certificates"][0];
    c["names"] = serde_json::json!(["www.example.ru", "WWW.example.ru", "*.example.ru", "bad_name"]);
    c["key_type"] = "rsa-1024".into();
    let t = &mut c["targets"][0];
    t["password"] = "hunter2-not-shown".into();
    t["dir"] = "relative/dir".into();
    t["cert_mode"] = "0999".into();
    t["key_file_name"] = "web.crt".into();
    t["owner"] = "root:www:data".into();
    t["reload"] = serde_json::json!(["", "reload"]);
    a["certificates"][1]["names"] = serde_json::json!(["*.other.org"]);
    let errs = mware_config::validate(&j.to_string(), &plugin().sections).expect_err("refused");
    let at = "servers[0].roles[0].acme";
    let text: Vec<String> = errs.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
    let all = text.join("\n");
    for (path, words) in [
        ("directory_url", "expected an https:// URL"),
        ("alarm_before_days", "expected fewer days than renew_before_days (30)"),
        ("contact[0]", "mailto:"),
        ("dns01.server", "ADDRESS:PORT"),
        ("certificates[0].names[1]", "expected each name once"),
        ("certificates[0].names[2]", "wildcard (*.) needs challenge \"dns-01\""),
        ("certificates[0].names[3]", "expected a DNS name"),
        ("certificates[0].key_type", "\"ecdsa-p256\" or \"rsa-2048\" or \"rsa-3072\""),
        ("certificates[0].targets[0]", "expected one of password and key_file"),
        ("certificates[0].targets[0].dir", "absolute"),
        ("certificates[0].targets[0].cert_mode", "octal"),
        ("certificates[0].targets[0].key_file_name", "other than cert_file's"),
        ("certificates[0].targets[0].owner", "user:group"),
        ("certificates[0].targets[0].reload[0]", "expected the program"),
        ("certificates[1].names[0]", "in the dns01 zone \"example.ru\""),
    ] {
        let want = format!("{at}.{path}: ");
        assert!(text.iter().any(|l| l.starts_with(&want) && l.contains(words)), "missing {want}...{words} in:\n{all}");
    }
    assert!(!all.contains("hunter2"), "a secret was shown:\n{all}");
}

#[test]
fn dns01_without_its_section_is_refused() {
    let mut j: serde_json::Value = serde_json::from_str(&example()).unwrap();
    j["servers"][0]["roles"][0]["acme"].as_object_mut().unwrap().remove("dns01");
    let errs = mware_config::validate(&j.to_string(), &plugin().sections).expect_err("refused");
    assert!(
        errs.iter().any(|p| p.path == "servers[0].roles[0].acme.certificates[1].challenge" && p.message.contains("without dns01")),
        "{errs:#?}"
    );
}
