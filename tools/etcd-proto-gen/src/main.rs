//! `mware-etcd-proto-gen [OUT_DIR]`: regenerates the vendored etcd-client's protobuf/tonic
//! code into OUT_DIR (default: the vendored crate's `src/rpc/generated`). Needs `protoc`.

use mware_etcd_proto_gen::{checked_in_dir, generate, vendored_crate};
use std::path::PathBuf;

fn main() {
    let out = std::env::args_os().nth(1).map(PathBuf::from).unwrap_or_else(checked_in_dir);
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("error: cannot create {}: {e}", out.display());
        std::process::exit(1);
    }
    match generate(&vendored_crate().join("proto"), &out) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
