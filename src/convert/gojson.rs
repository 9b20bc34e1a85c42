//! JSON written the way Go's `encoding/json` writes it, for the image config Docker itself
//! builds when it pulls a schema 1 image (moby `image/v1/imagev1.go` `MakeConfigFromV1Config`).
//!
//! Go compacts a `json.RawMessage` as it marshals it, escapes `<`, `>` and `&` (and U+2028,
//! U+2029) inside strings, sorts map keys byte-wise, and prints a `time.Time` as RFC 3339 with
//! the fraction's trailing zeros cut. Writing the same bytes gives the converted config the
//! image ID Docker 1.12–17.03 computes for the same schema 1 manifest. Control characters are
//! escaped as `\u00XX`, as Go did before 1.22 (the Go those Docker releases were built with).

/// Why a value cannot be written the way Go would.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GoJsonError {
    #[error("not valid JSON: {0}")]
    Invalid(String),
    #[error("{0:?} is not an RFC 3339 time")]
    BadTime(String),
}

/// `s` as a Go JSON string literal, quotes included.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_char(c, &mut out);
    }
    out.push('"');
    out
}

fn escape_char(c: char, out: &mut String) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
            out.push_str(&format!("\\u{:04x}", c as u32));
        }
        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
    }
}

/// A JSON text compacted as Go's `json.Compact` with HTML escaping does it when it marshals a
/// `json.RawMessage`: whitespace outside strings removed, `<`, `>`, `&`, U+2028 and U+2029
/// inside strings escaped, every other byte kept (escapes such as `\/` stay as written).
/// The text is checked to be valid JSON first.
pub fn compact(raw: &str) -> Result<String, GoJsonError> {
    serde_json::from_str::<serde::de::IgnoredAny>(raw)
        .map_err(|e| GoJsonError::Invalid(e.to_string()))?;
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            if escaped {
                escaped = false;
                out.push(c);
                continue;
            }
            match c {
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => escape_char(c, &mut out),
                c => out.push(c),
            }
        } else {
            match c {
                ' ' | '\t' | '\n' | '\r' => {}
                '"' => {
                    in_string = true;
                    out.push(c);
                }
                c => out.push(c),
            }
        }
    }
    Ok(out)
}

/// An RFC 3339 time as Go's `time.Time` marshals it after parsing it (RFC 3339 with
/// nanoseconds, trailing zeros of the fraction cut, a zero offset written `Z`). `None` (the
/// field was absent) is Go's zero time.
pub fn time(s: Option<&str>) -> Result<String, GoJsonError> {
    let Some(s) = s else {
        return Ok("0001-01-01T00:00:00Z".into());
    };
    let bad = || GoJsonError::BadTime(s.to_string());
    let b = s.as_bytes();
    // YYYY-MM-DDTHH:MM:SS
    if b.len() < 20 {
        return Err(bad());
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut fraction = "";
    if let Some(f) = rest.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return Err(bad());
        }
        fraction = f[..n].trim_end_matches('0');
        rest = &f[n..];
    }
    let zone = match rest {
        "Z" | "z" => "Z".to_string(),
        z if z.len() == 6
            && (z.starts_with('+') || z.starts_with('-'))
            && z.as_bytes()[3] == b':'
            && z[1..3].bytes().all(|c| c.is_ascii_digit())
            && z[4..6].bytes().all(|c| c.is_ascii_digit()) =>
        {
            if &z[1..3] == "00" && &z[4..6] == "00" {
                "Z".to_string()
            } else {
                z.to_string()
            }
        }
        _ => return Err(bad()),
    };
    let mut out = format!("{}T{}", &s[..10], &s[11..19]);
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out.push_str(&zone);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_like_go() {
        assert_eq!(string("a&&b <c>"), r#""a\u0026\u0026b \u003cc\u003e""#);
        assert_eq!(string("q\"\\\n\u{1}"), r#""q\"\\\n\u0001""#);
        assert_eq!(string("é\u{2028}"), "\"é\\u2028\"");
    }

    #[test]
    fn compacts_like_go() {
        assert_eq!(
            compact("{ \"a\" : [1, 2 ],\n \"b\":\"x y\\/<&>\" }").unwrap(),
            r#"{"a":[1,2],"b":"x y\/\u003c\u0026\u003e"}"#
        );
        assert_eq!(compact(r#"{"a":"\"<"}"#).unwrap(), r#"{"a":"\"\u003c"}"#);
        assert!(compact("{\"a\":").is_err());
    }

    #[test]
    fn times_print_like_go() {
        assert_eq!(
            time(Some("2016-05-04T06:26:41.522308365Z")).unwrap(),
            "2016-05-04T06:26:41.522308365Z"
        );
        assert_eq!(
            time(Some("2016-05-04T06:26:41.500000000Z")).unwrap(),
            "2016-05-04T06:26:41.5Z"
        );
        assert_eq!(
            time(Some("2016-05-04T06:26:41.000Z")).unwrap(),
            "2016-05-04T06:26:41Z"
        );
        assert_eq!(
            time(Some("2016-05-04T06:26:41+00:00")).unwrap(),
            "2016-05-04T06:26:41Z"
        );
        assert_eq!(
            time(Some("2016-05-04T06:26:41.1-07:00")).unwrap(),
            "2016-05-04T06:26:41.1-07:00"
        );
        assert_eq!(time(None).unwrap(), "0001-01-01T00:00:00Z");
        for bad in [
            "",
            "2016-05-04",
            "2016-05-04T06:26:41",
            "2016-05-04T06:26:41.Z",
        ] {
            assert!(time(Some(bad)).is_err(), "{bad}");
        }
    }
}
