//! Zip64: an entry of more than 4 GiB (4 GiB and 1 MiB of zeros, deflated on every core into a
//! few MiB) is written with 64-bit sizes in its data descriptor and central directory;
//! Info-ZIP's `unzip -t` accepts the archive, and our streaming reader gets the entries
//! back with their CRC-32 and sizes checked.

use mware_backup::{read_zip, Zipper};
use std::io::{Read, Write};

#[test]
fn an_entry_over_4_gib_round_trips() {
    const BIG: u64 = (4u64 << 30) + (1 << 20);
    let mut z = Zipper::new(Vec::new(), 1);
    z.add_dir("base", 0o700).unwrap();
    z.add_file("base/big", 0o600, &mut std::io::repeat(0).take(BIG)).unwrap();
    z.add_file("base/small", 0o600, &mut &b"after the big one"[..]).unwrap();
    let zip = z.finish().unwrap();
    assert!(zip.len() < 64 << 20, "{} bytes", zip.len());

    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().write_all(&zip).unwrap();
    let out = std::process::Command::new("unzip").arg("-tq").arg(f.path()).output().unwrap();
    assert!(out.status.success(), "unzip -t: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let list = String::from_utf8_lossy(&std::process::Command::new("unzip").arg("-l").arg(f.path()).output().unwrap().stdout).into_owned();
    assert!(list.contains(&BIG.to_string()), "{list}");

    let mut seen = Vec::new();
    let n = read_zip(&mut std::io::BufReader::new(&zip[..]), |e, data| {
        let mut count = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let k = data.read(&mut buf)?;
            if k == 0 {
                break;
            }
            count += k as u64;
        }
        seen.push((e.name.clone(), e.dir, count));
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(seen, vec![("base".into(), true, 0), ("base/big".into(), false, BIG), ("base/small".into(), false, 17)]);

    // A damaged archive is refused.
    let mut bad = zip.clone();
    let i = bad.len() / 2;
    bad[i] ^= 0xff;
    let e = read_zip(&mut std::io::BufReader::new(&bad[..]), |_, d| std::io::copy(d, &mut std::io::sink()).map(|_| ()));
    assert!(e.is_err());
}
