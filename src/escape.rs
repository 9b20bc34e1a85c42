//! Text from a bundle or a registry, made safe to print. A reference, a target, a file name
//! or an error body is written by whoever made the bundle or runs the registry: printed raw,
//! an escape sequence in it could clear the operator's screen, and a newline could forge a line
//! of airlock's own output ("OK"). Every such string goes through [`Escaped`] (or [`escape`])
//! before it reaches a terminal or a log.
//!
//! Control characters (C0, DEL, C1) and the Unicode format characters that reorder or hide
//! text (bidirectional overrides and isolates, zero-width characters, the BOM) are written as
//! Rust escapes: `\n`, `\t`, `\r`, `\u{1b}`. Everything else, including other non-ASCII text,
//! is kept.

use std::borrow::Cow;
use std::fmt;

/// True for a character that must not reach a terminal as it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' // zero-width space, joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202a}'..='\u{202e}' // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
            | '\u{feff}' // byte order mark
        )
}

fn write_escaped(f: &mut dyn fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\t' => f.write_str("\\t"),
        c => write!(f, "\\u{{{:x}}}", c as u32),
    }
}

/// `s` with every unsafe character escaped (borrowed when there is none).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(Escaped(s).to_string())
}

/// Displays a string with every unsafe character escaped.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if is_unsafe(c) {
                write_escaped(f, c)?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// `s` as one line of output: unsafe characters escaped, except the newlines and tabs of a
/// text airlock composed itself. The last defence at the terminal: an escape sequence never
/// gets through, whatever a message forgot to escape.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && c != '\n' && c != '\t') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) && c != '\n' && c != '\t' {
            let _ = write_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_escaped() {
        let hostile = "docker.io/x:1\u{1b}[2J\nOK: verified\r\u{9b}31m\u{202e}txt";
        let e = escape(hostile);
        assert_eq!(
            e,
            "docker.io/x:1\\u{1b}[2J\\nOK: verified\\r\\u{9b}31m\\u{202e}txt"
        );
        assert!(!e.chars().any(is_unsafe));
        assert!(matches!(
            escape("docker.io/library/busybox:1.36 ünïcödé"),
            Cow::Borrowed(_)
        ));
        assert_eq!(Escaped("a\tb").to_string(), "a\\tb");
        // At the terminal, airlock's own line breaks stay; what it did not mean goes.
        assert_eq!(terminal("one\n\ttwo\u{1b}[0m"), "one\n\ttwo\\u{1b}[0m");
    }
}
