//! The `users` section: the example validates; a section wrong in every way reports every
//! problem with its path (CRLF in the sender refused), and secrets stay env var names.

#[test]
fn the_example_validates_and_a_bad_section_reports_every_problem() {
    let sections = mware_users::plugin().sections;
    let ok = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../examples/users.json")).unwrap();
    let v = mware_config::validate(&ok, &sections).expect("examples/users.json validates");
    let role = &v.site.servers[0].roles[0];
    let u = role.section::<mware_users::Users>().expect("the users section parses");
    assert_eq!(u.domains.len(), 2);
    assert!(!u.domains[0].self_registration.enabled, "self-registration is off by default");
    assert_eq!((u.argon2.memory_kib, u.argon2.iterations, u.argon2.parallelism), (19456, 2, 1));
    assert_eq!(u.domains[0].oidc.len(), 2);
    assert_eq!(u.domains[0].oidc[1].profile, mware_users::OidcProfile::Esia);

    let bad = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/bad_section.json")).unwrap();
    let problems = mware_config::validate(&bad, &sections).expect_err("the bad section is refused");
    let paths: Vec<String> = problems.iter().map(|p| p.path.clone()).collect();
    let at = "servers[0].roles[0].users.";
    for want in [
        "database.dsn_env",
        "database.pool_size",
        "public_url",
        "smtp.host",
        "smtp.tls",
        "smtp",
        "smtp.from",
        "argon2.memory_kib",
        "password_policy.max_length",
        "domains[0].name",
        "domains[0].self_registration.enabled",
        "domains[0].self_registration.allowed_email_domains[0]",
        "domains[0].roles",
        "domains[2].bogus",
        "domains[2].name",
        "domains[1].oidc[0].name",
        "domains[1].oidc[0].issuer",
        "domains[1].oidc[0].client_id",
        "domains[1].oidc[0]",
        "domains[1].oidc[0].user_claim",
    ] {
        assert!(paths.contains(&format!("{at}{want}")), "no problem at {want}: {paths:#?}");
    }
    assert_eq!(problems.len(), 21, "{problems:#?}");
    let from = problems.iter().find(|p| p.path.ends_with("smtp.from")).unwrap();
    assert!(from.message.contains("control characters"), "{}", from.message);
}
