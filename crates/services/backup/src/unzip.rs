//! Reads a zip archive as a stream, front to back, as it arrives over SSH: each local
//! header, its data (deflated or stored; sizes from the header, or, with a data
//! descriptor, from the end of the deflate stream), its data descriptor, and the CRC-32
//! of every entry checked. It reads what [`crate::zipper`] writes and what common zip
//! tools write. An entry named twice is refused (a later copy would replace the first), and
//! so is an archive whose central directory marks an entry as a symbolic link (the local
//! headers carry no mode, so such an entry would otherwise be unpacked as a plain file
//! holding the link's target).

use flate2::{Decompress, FlushDecompress, Status};
use std::collections::HashSet;
use std::io::{self, BufRead, Read};

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;

/// One entry as it is met.
pub struct Entry {
    /// Its name, checked relative (see [`crate::zipper::entry_name`]).
    pub name: String,
    /// A folder.
    pub dir: bool,
    /// Uncompressed size from the local header (0 when a data descriptor follows).
    pub size: u64,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

/// Reads every entry of the archive in `r`; `sink(entry, data)` gets each entry with a
/// reader of its (uncompressed) data, which it must read to its end. Returns the number of
/// entries. The CRC-32 and sizes of every entry are checked.
pub fn read_all<R: BufRead>(r: &mut R, mut sink: impl FnMut(&Entry, &mut dyn Read) -> io::Result<()>) -> io::Result<u64> {
    let mut n = 0;
    let mut seen = HashSet::new();
    loop {
        let mut sig = [0u8; 4];
        r.read_exact(&mut sig).map_err(|e| bad(format!("expected a zip header or the central directory, found the end ({e})")))?;
        match u32::from_le_bytes(sig) {
            LOCAL => {}
            CENTRAL => {
                central(r)?;
                return Ok(n);
            }
            END => return Ok(n),
            other => return Err(bad(format!("expected a zip local header, found signature {other:#010x}"))),
        }
        let h = local_header(r, &mut seen)?;
        let mut hasher = crc32fast::Hasher::new();
        let (used, produced) = entry_data(r, &h, &mut hasher, &mut sink)?;
        let (crc, csize, usize_) = if h.streamed() { descriptor(r, used, produced)? } else { (h.crc, h.csize, h.usize_) };
        let got = hasher.finalize();
        if got != crc || used != csize || produced != usize_ {
            let name = &h.name;
            return Err(bad(format!(
                "{name}: expected crc {crc:08x}, {csize} bytes packed, {usize_} bytes; found crc {got:08x}, {used} packed, {produced} (the archive is damaged)"
            )));
        }
        n += 1;
    }
}

/// A local header, as read.
struct LocalHeader {
    flags: u16,
    method: u16,
    crc: u32,
    /// Packed and unpacked sizes (0 when a data descriptor follows).
    csize: u64,
    usize_: u64,
    /// The checked name, and whether it names a folder.
    name: String,
    dir: bool,
}

impl LocalHeader {
    /// Sizes and CRC come in a data descriptor after the data.
    fn streamed(&self) -> bool {
        self.flags & 0x08 != 0
    }
}

/// Reads a local header (its signature already read): refuses a name met before (kept in
/// `seen`) and an encrypted entry.
fn local_header<R: BufRead>(r: &mut R, seen: &mut HashSet<String>) -> io::Result<LocalHeader> {
    let mut h = [0u8; 26];
    r.read_exact(&mut h)?;
    let (flags, method, crc, csize, usize_) = (u16_at(&h, 2), u16_at(&h, 4), u32_at(&h, 10), u32_at(&h, 14), u32_at(&h, 18));
    let (name_len, extra_len) = (u16_at(&h, 22) as usize, u16_at(&h, 24) as usize);
    let mut name = vec![0u8; name_len];
    r.read_exact(&mut name)?;
    let mut extra = vec![0u8; extra_len];
    r.read_exact(&mut extra)?;
    let raw = String::from_utf8(name).map_err(|_| bad("expected a UTF-8 entry name"))?;
    let dir = raw.ends_with('/');
    let name = crate::zipper::entry_name(&raw)?;
    if !seen.insert(name.clone()) {
        return Err(bad(format!("{name}: expected each entry once, found it a second time (it would replace the first)")));
    }
    let (csize, usize_) = zip64_sizes(&extra, u64::from(csize), u64::from(usize_));
    if flags & 0x01 != 0 {
        return Err(bad(format!("{name}: expected an unencrypted entry, found an encrypted one")));
    }
    Ok(LocalHeader { flags, method, crc, csize, usize_, name, dir })
}

/// The sizes of a local header, with those that did not fit taken from its Zip64 extra
/// field.
fn zip64_sizes(extra: &[u8], mut csize: u64, mut usize_: u64) -> (u64, u64) {
    let mut i = 0;
    while i + 4 <= extra.len() {
        let (id, len) = (u16_at(extra, i), u16_at(extra, i + 2) as usize);
        if id == 1 && i + 4 + len <= extra.len() {
            let mut j = i + 4;
            if usize_ == 0xFFFF_FFFF && j + 8 <= i + 4 + len {
                usize_ = u64_at(extra, j);
                j += 8;
            }
            if csize == 0xFFFF_FFFF && j + 8 <= i + 4 + len {
                csize = u64_at(extra, j);
            }
        }
        i += 4 + len;
    }
    (csize, usize_)
}

/// Hands the entry's data to `sink`, reads what it left, and returns the bytes packed and
/// unpacked; `hasher` gets the data.
fn entry_data<R: BufRead>(
    r: &mut R,
    h: &LocalHeader,
    hasher: &mut crc32fast::Hasher,
    sink: &mut impl FnMut(&Entry, &mut dyn Read) -> io::Result<()>,
) -> io::Result<(u64, u64)> {
    let (name, method, streamed) = (&h.name, h.method, h.streamed());
    let mut data = EntryData { r, method, streamed, left: h.csize, z: Decompress::new(false), done: false, used: 0, produced: 0, hasher };
    if method != 0 && method != 8 {
        return Err(bad(format!("{name}: expected stored or deflated data, found compression method {method}")));
    }
    if method == 0 && streamed {
        return Err(bad(format!("{name}: expected sizes for stored data, found a data descriptor")));
    }
    sink(&Entry { name: name.clone(), dir: h.dir, size: h.usize_ }, &mut data)?;
    io::copy(&mut data, &mut io::sink())?;
    Ok((data.used, data.produced))
}

/// Reads a data descriptor (its signature optional): the CRC-32 and the sizes, in Zip64
/// form when either size `used` or `produced` needs it.
fn descriptor<R: BufRead>(r: &mut R, used: u64, produced: u64) -> io::Result<(u32, u64, u64)> {
    let mut d = [0u8; 4];
    r.read_exact(&mut d)?;
    let mut first = u32::from_le_bytes(d);
    if first == DESCRIPTOR {
        r.read_exact(&mut d)?;
        first = u32::from_le_bytes(d);
    }
    if used >= 0xFFFF_FFFF || produced >= 0xFFFF_FFFF {
        let mut s = [0u8; 16];
        r.read_exact(&mut s)?;
        Ok((first, u64_at(&s, 0), u64_at(&s, 8)))
    } else {
        let mut s = [0u8; 8];
        r.read_exact(&mut s)?;
        Ok((first, u64::from(u32_at(&s, 0)), u64::from(u32_at(&s, 4))))
    }
}

/// Reads the central directory (its first signature already read) and refuses an entry
/// that a Unix zip tool marked as a symbolic link.
fn central<R: BufRead>(r: &mut R) -> io::Result<()> {
    loop {
        let mut h = [0u8; 42];
        r.read_exact(&mut h).map_err(|e| bad(format!("expected a central directory record, found the end ({e})")))?;
        let (made_by, external) = (u16_at(&h, 0), u32_at(&h, 34));
        let (name_len, skip) = (u16_at(&h, 24) as usize, u16_at(&h, 26) as u64 + u16_at(&h, 28) as u64);
        let mut name = vec![0u8; name_len];
        r.read_exact(&mut name)?;
        io::copy(&mut r.by_ref().take(skip), &mut io::sink())?;
        const S_IFMT: u32 = 0o170_000;
        const S_IFLNK: u32 = 0o120_000;
        if made_by >> 8 == 3 && (external >> 16) & S_IFMT == S_IFLNK {
            let name = String::from_utf8_lossy(&name);
            return Err(bad(format!(
                "{name}: expected a file or a folder, found a symbolic link (refused: it could point outside the restore)"
            )));
        }
        let mut sig = [0u8; 4];
        r.read_exact(&mut sig).map_err(|e| bad(format!("expected the end of the central directory, found the end of the data ({e})")))?;
        if u32::from_le_bytes(sig) != CENTRAL {
            return Ok(());
        }
    }
}

struct EntryData<'a, R: BufRead> {
    r: &'a mut R,
    method: u16,
    streamed: bool,
    left: u64,
    z: Decompress,
    done: bool,
    used: u64,
    produced: u64,
    hasher: &'a mut crc32fast::Hasher,
}

impl<R: BufRead> Read for EntryData<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        let n = if self.method == 0 {
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
            let max = out.len().min(self.left.min(usize::MAX as u64) as usize);
            let n = self.r.read(&mut out[..max])?;
            if n == 0 {
                return Err(bad("expected more stored data, found the end"));
            }
            self.left -= n as u64;
            self.used += n as u64;
            n
        } else {
            loop {
                let input = self.r.fill_buf()?;
                let input = if self.streamed { input } else { &input[..input.len().min(self.left as usize)] };
                if input.is_empty() {
                    return Err(bad("expected more deflated data, found the end"));
                }
                let (before_in, before_out) = (self.z.total_in(), self.z.total_out());
                let st = self.z.decompress(input, out, FlushDecompress::None).map_err(|e| bad(format!("deflate data: {e}")))?;
                let consumed = (self.z.total_in() - before_in) as usize;
                let made = (self.z.total_out() - before_out) as usize;
                self.r.consume(consumed);
                self.used += consumed as u64;
                self.left = self.left.saturating_sub(consumed as u64);
                if st == Status::StreamEnd {
                    self.done = true;
                }
                if made > 0 || self.done {
                    break made;
                }
            }
        };
        self.hasher.update(&out[..n]);
        self.produced += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zipper::Zipper;

    fn names(zip: &[u8]) -> io::Result<Vec<String>> {
        let mut out = vec![];
        read_all(&mut &zip[..], |e, _| {
            out.push(e.name.clone());
            Ok(())
        })?;
        Ok(out)
    }

    fn archive(entries: &[(&str, u32)]) -> Vec<u8> {
        let mut z = Zipper::new(Vec::new(), 6);
        for (name, mode) in entries {
            z.add_file(name, *mode, &mut &b"etc/passwd"[..]).unwrap();
        }
        z.finish().unwrap()
    }

    #[test]
    fn plain_entries_are_read() {
        assert_eq!(names(&archive(&[("a", 0o100644), ("d/b", 0o100600)])).unwrap(), ["a", "d/b"]);
    }

    #[test]
    fn a_repeated_entry_is_refused_by_name() {
        let e = names(&archive(&[("a", 0o100644), ("pg/x", 0o100600), ("pg/x", 0o100600)])).unwrap_err();
        assert!(e.to_string().starts_with("pg/x: expected each entry once"), "{e}");
    }

    #[test]
    fn a_symbolic_link_is_refused_by_name() {
        let e = names(&archive(&[("a", 0o100644), ("evil", 0o120777)])).unwrap_err();
        assert!(e.to_string().starts_with("evil: expected a file or a folder, found a symbolic link"), "{e}");
    }
}
