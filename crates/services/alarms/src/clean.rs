//! Alarm texts made safe to show: what a sender put in a syslog message or an API call
//! reaches Telegram, SNMP managers, terminals (`mware alarms list`) and the console, so
//! every alarm's fields go through [`text`] once, where the alarm is made
//! ([`crate::intake::Maker::make`]), whatever its source.
//!
//! Removed: NUL and the other C0 controls except tab (a line break becomes a space),
//! DEL and the C1 controls, ANSI escape sequences whole (`ESC [ … final`, `ESC ] … BEL`
//! or `ESC \`, and `ESC` with one more character), and the bidirectional controls that
//! make text read other than it is stored (U+200E, U+200F, U+061C, U+202A–U+202E,
//! U+2066–U+2069).

use std::borrow::Cow;

/// Whether `c` is a bidirectional control.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` is removed on its own (a control other than tab, or a bidi control).
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\t') || is_bidi(c)
}

/// `s` without controls, escape sequences and bidi controls; borrowed when clean.
pub fn text(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\t') {
        return Cow::Borrowed(s);
    }
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\u{1b}' => skip_escape(&mut it),
            // CSI as one C1 character: its parameters go with it.
            '\u{9b}' => skip_csi(&mut it),
            '\n' | '\r' => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c if is_unsafe(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Skips the rest of an escape sequence after `ESC`.
fn skip_escape(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match it.next() {
        Some('[') => skip_csi(it),
        // OSC, DCS, SOS, PM, APC: a string up to BEL or ST (`ESC \`).
        Some(']' | 'P' | 'X' | '^' | '_') => {
            while let Some(c) = it.next() {
                if c == '\u{7}' || c == '\u{9c}' || (c == '\u{1b}' && it.next_if_eq(&'\\').is_some()) {
                    return;
                }
            }
        }
        // ESC with intermediates (`ESC ( B`): up to the final byte.
        Some(c) if ('\u{20}'..='\u{2f}').contains(&c) => {
            while it.next_if(|c| ('\u{20}'..='\u{2f}').contains(c)).is_some() {}
            it.next();
        }
        // Any other: two characters in all.
        _ => {}
    }
}

/// Skips a CSI's parameters and intermediates up to its final byte (`@` to `~`).
fn skip_csi(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    // A non-ASCII character ends a broken sequence and is kept.
    while let Some(c) = it.next_if(char::is_ascii) {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn clean_text_is_borrowed_unchanged() {
        for s in ["dialog timeout", "tab\tseparated", "Привет, мир", "日本語 ok", ""] {
            assert!(matches!(text(s), std::borrow::Cow::Borrowed(_)), "{s:?}");
            assert_eq!(text(s), s);
        }
    }

    #[test]
    fn nul_and_controls_are_removed_and_line_breaks_become_a_space() {
        assert_eq!(text("a\0b\u{7}c\u{8}d\u{7f}e\u{85}f"), "abcdef");
        assert_eq!(text("line one\r\nline two\nthree"), "line one line two three");
        assert_eq!(text("keep\ttab"), "keep\ttab");
    }

    #[test]
    fn ansi_escape_sequences_go_whole() {
        assert_eq!(text("\u{1b}[31;1mRED\u{1b}[0m alert"), "RED alert");
        assert_eq!(text("\u{1b}[2J\u{1b}[Hcleared"), "cleared");
        assert_eq!(text("a\u{1b}]0;owned title\u{7}b"), "ab");
        assert_eq!(text("a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b"), "alinkb");
        assert_eq!(text("a\u{1b}(Bb\u{1b}7c"), "abc");
        assert_eq!(text("x\u{9b}31my"), "xy");
        assert_eq!(text("cut at the end \u{1b}["), "cut at the end ");
        assert_eq!(text("\u{1b}[1Жx"), "Жx");
    }

    #[test]
    fn bidi_controls_are_removed() {
        // "invoice_\u{202E}fdp.exe" shows as "invoice_exe.pdf".
        assert_eq!(text("invoice_\u{202E}fdp.exe"), "invoice_fdp.exe");
        let all = "\u{200E}\u{200F}\u{61C}\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\u{2066}\u{2067}\u{2068}\u{2069}";
        assert_eq!(text(&format!("a{all}b")), "ab");
        assert_eq!(text("עברית ok"), "עברית ok", "right-to-left letters themselves stay");
    }
}
