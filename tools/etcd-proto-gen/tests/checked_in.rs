//! The vendored etcd-client's checked-in protobuf/tonic code is what the generator makes
//! from the checked-in protos today (needs protoc, which scripts/setup.sh installs), and
//! the vendored crate has no build script that could look for protoc.

use mware_etcd_proto_gen::{checked_in_dir, generate, vendored_crate, GENERATED, HEADER};

#[test]
fn the_checked_in_etcd_code_is_what_the_protos_generate() {
    let tmp = tempfile::tempdir().unwrap();
    let written = generate(&vendored_crate().join("proto"), tmp.path())
        .unwrap_or_else(|e| panic!("{e} (is protoc installed? scripts/setup.sh installs it)"));
    assert_eq!(written.len(), GENERATED.len());
    let mut stale = Vec::new();
    for name in GENERATED {
        let fresh = std::fs::read_to_string(tmp.path().join(name)).unwrap();
        assert!(fresh.starts_with(HEADER) && fresh.contains("pub struct"), "{name}: expected generated code, found {} bytes", fresh.len());
        let checked_in = checked_in_dir().join(name);
        match std::fs::read_to_string(&checked_in) {
            Ok(old) if old == fresh => {}
            Ok(old) => stale.push(format!("{} differs ({} bytes checked in, {} generated)", checked_in.display(), old.len(), fresh.len())),
            Err(e) => stale.push(format!("{}: {e}", checked_in.display())),
        }
    }
    assert!(stale.is_empty(), "the checked-in etcd code is stale; run scripts/regen-etcd-proto.sh and commit:\n{}", stale.join("\n"));
}

#[test]
fn the_vendored_etcd_client_builds_without_a_build_script() {
    let dir = vendored_crate();
    assert!(!dir.join("build.rs").exists(), "expected no build.rs in {}, found one", dir.display());
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.lines().any(|l| l.trim() == "build = false"), "expected `build = false` in the vendored Cargo.toml");
    for table in ["[build-dependencies]", "[dev-dependencies]"] {
        assert!(!manifest.contains(table), "expected no {table} in the vendored Cargo.toml, found one");
    }
    let pb = std::fs::read_to_string(dir.join("src/rpc/pb.rs")).unwrap();
    assert!(!pb.contains("include_proto!"), "expected src/rpc/pb.rs to include the checked-in code, found include_proto! (OUT_DIR)");
    for name in GENERATED {
        assert!(pb.contains(&format!("include!(\"generated/{name}\")")), "expected src/rpc/pb.rs to include generated/{name}");
    }
}
