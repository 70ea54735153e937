//! `mware-cti-proto-gen [OUT_DIR]`: regenerates the gRPC CTI adapter's code into OUT_DIR
//! (default: `crates/services/calltracking/src/cti_grpc`). Needs `protoc`.

use std::path::PathBuf;

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| mware_cti_proto_gen::checked_in().parent().expect("a folder").to_path_buf());
    match mware_cti_proto_gen::generate(&out) {
        Ok(f) => println!("{}", f.display()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
