//! Shell quoting for remote command lines: sshd hands the command line to the login
//! shell, so every value in it is quoted here.

/// Quotes one argument for a POSIX shell: left as is when it holds only characters no
/// shell treats specially, else `'...'` with embedded quotes escaped.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A command line of `args`, each one shell-quoted, separated by spaces.
pub fn command_line<S: AsRef<str>>(args: &[S]) -> String {
    args.iter().map(|a| sh_quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("/usr/lib/postgresql/15/bin/pg_ctl"), "/usr/lib/postgresql/15/bin/pg_ctl");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("x'; rm -rf /; '"), "'x'\\''; rm -rf /; '\\'''");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(command_line(&["cat", "> f", "it's"]), "cat '> f' 'it'\\''s'");
    }

    #[test]
    fn a_shell_gets_back_every_argument_unchanged() {
        let args = ["printf", "%s|", "a b", "x'; touch /tmp/mware-pwned; '", "$(id)", "`id`", "\\n", "", "é \"q\""];
        let out = std::process::Command::new("sh").arg("-c").arg(command_line(&args)).output().expect("sh");
        let expect: String = args[2..].iter().map(|a| format!("{a}|")).collect();
        assert_eq!(String::from_utf8_lossy(&out.stdout), expect);
    }
}
