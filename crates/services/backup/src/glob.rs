//! rsync's meaning of `excluded_paths`, for the zip mode (the rsync mode hands the
//! patterns to rsync itself): `*` matches anything but `/`, `?` one character but `/`,
//! `[...]` a class, `**` anything including `/`. A pattern with a `/` (not counting a
//! trailing one) or a `**` is matched against the path from the folder's top (at any
//! depth unless it starts with `/`); otherwise against the last part of the name only. A
//! trailing `/` matches folders only. An excluded folder's contents are left out too.

/// One exclude pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    pat: Vec<char>,
    anchored: bool,
    full: bool,
    dir_only: bool,
}

impl Pattern {
    /// Parses an rsync exclude pattern.
    pub fn new(p: &str) -> Pattern {
        let dir_only = p.ends_with('/') && p.len() > 1;
        let p = if dir_only { &p[..p.len() - 1] } else { p };
        let anchored = p.starts_with('/');
        let p = p.trim_start_matches('/');
        let full = anchored || p.contains('/') || p.contains("**");
        Pattern { pat: p.chars().collect(), anchored, full, dir_only }
    }

    /// Whether `rel` (relative to the folder's top, `/`-separated) is excluded.
    pub fn matches(&self, rel: &str, is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        let name: Vec<char> = rel.chars().collect();
        if !self.full {
            let last = rel.rsplit('/').next().unwrap_or(rel);
            return wild(&self.pat, &last.chars().collect::<Vec<_>>());
        }
        if self.anchored {
            return wild(&self.pat, &name);
        }
        // At any depth: the whole path or any part of it after a '/'.
        std::iter::once(0)
            .chain(name.iter().enumerate().filter(|(_, c)| **c == '/').map(|(i, _)| i + 1))
            .any(|start| wild(&self.pat, &name[start..]))
    }
}

/// Whether any of `patterns` excludes `rel`.
pub fn excluded(patterns: &[Pattern], rel: &str, is_dir: bool) -> bool {
    patterns.iter().any(|p| p.matches(rel, is_dir))
}

fn wild(p: &[char], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') if p.get(1) == Some(&'*') => {
            let rest = &p[2..];
            // "**/" may also match no folder at all.
            if rest.first() == Some(&'/') && wild(&rest[1..], s) {
                return true;
            }
            (0..=s.len()).any(|i| wild(rest, &s[i..]))
        }
        Some('*') => {
            let rest = &p[1..];
            for i in 0..=s.len() {
                if wild(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == '/' {
                    return false;
                }
            }
            false
        }
        Some('?') => !s.is_empty() && s[0] != '/' && wild(&p[1..], &s[1..]),
        Some('[') => match class(p, s.first().copied()) {
            Some((true, used)) => wild(&p[used..], &s[1..]),
            Some((false, _)) => false,
            None => !s.is_empty() && s[0] == '[' && wild(&p[1..], &s[1..]),
        },
        Some('\\') if p.len() > 1 => !s.is_empty() && s[0] == p[1] && wild(&p[2..], &s[1..]),
        Some(c) => !s.is_empty() && s[0] == *c && wild(&p[1..], &s[1..]),
    }
}

/// `[...]` at the start of `p` against `c`: (matched, pattern chars used); `None` when
/// the class is not closed.
fn class(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(1), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            let c = c?;
            return Some(((hit != negate) && c != '/', i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if let Some(c) = c {
                hit |= p[i] <= c && c <= p[i + 2];
            }
            i += 3;
        } else {
            hit |= c == Some(p[i]);
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(p: &str, rel: &str, dir: bool) -> bool {
        Pattern::new(p).matches(rel, dir)
    }

    #[test]
    fn rsync_meanings() {
        assert!(x("**/common/temp/*", "a/common/temp/f", false));
        assert!(x("**/common/temp/*", "a/b/common/temp/f", false));
        assert!(x("**/common/temp/*", "a/common/temp/sub", true));
        assert!(!x("**/common/temp/*", "a/common/temp", true));
        assert!(x("*.tmp", "a/b/c.tmp", false));
        assert!(!x("*.tmp", "a/b.tmp/c", false));
        assert!(x("cache/", "x/cache", true));
        assert!(!x("cache/", "x/cache", false));
        assert!(x("/top.txt", "top.txt", false));
        assert!(!x("/top.txt", "a/top.txt", false));
        assert!(x("a/*.log", "z/a/x.log", false));
        assert!(!x("a/*.log", "a/b/x.log", false));
        assert!(x("f[0-9].txt", "d/f7.txt", false));
        assert!(!x("f[!0-9].txt", "d/f7.txt", false));
        assert!(x("?.c", "q/x.c", false));
    }
}
