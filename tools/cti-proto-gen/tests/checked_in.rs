//! The checked-in gRPC CTI code is what the generator makes from the checked-in proto
//! today. Skipped (with a line saying so) when no protoc is found.

use mware_cti_proto_gen::{checked_in, generate, protoc_present, GENERATED, HEADER};

#[test]
fn the_checked_in_cti_code_is_what_the_proto_generates() {
    if !protoc_present() {
        eprintln!("skipped: no protoc (scripts/setup.sh installs it; PROTOC may name it)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fresh = std::fs::read_to_string(generate(tmp.path()).unwrap()).unwrap();
    assert!(fresh.starts_with(HEADER) && fresh.contains("pub struct Event"), "{GENERATED}: expected generated code");
    let old = std::fs::read_to_string(checked_in()).unwrap_or_default();
    assert!(old == fresh, "{} is stale; run `cargo run -p mware-cti-proto-gen` and commit", checked_in().display());
}
