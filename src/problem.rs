//! A problem found in a bundle or beside it: what it is about, as a typed [`Subject`], and
//! what is wrong. The images a problem keeps from being pushed are listed with it, so a
//! report finds an image's problems by its name, never by searching messages for it (an image
//! `a:1` must not pick up what is said of `a:10`).

use std::collections::BTreeSet;
use std::fmt;

use crate::digest::Digest;
use crate::escape::Escaped;

/// What a problem is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// An image, by the source reference `bundle.json` gives it.
    Image(String),
    /// A manifest, index, config or layer, by digest.
    Blob(Digest),
    /// A file: a document of the bundle (`bundle.json`, `index.json`, `oci-layout`), a part, or
    /// the checksum file.
    File(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Image(s) => write!(f, "{}", Escaped(s)),
            Subject::Blob(d) => write!(f, "blob {d}"),
            Subject::File(name) => write!(f, "file {}", Escaped(name)),
        }
    }
}

/// Something wrong with one image, blob or file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub subject: Subject,
    /// What is wrong, without the subject.
    pub what: String,
    /// The images it keeps from being pushed: the image itself, or the images that use a blob.
    /// Empty for a problem of the bundle as a whole.
    pub images: BTreeSet<String>,
}

impl Problem {
    /// A problem of image `source`.
    pub fn image(source: &str, what: impl Into<String>) -> Problem {
        Problem {
            subject: Subject::Image(source.to_string()),
            what: what.into(),
            images: BTreeSet::from([source.to_string()]),
        }
    }

    /// A problem of blob `d`, used by `images`.
    pub fn blob<'a>(
        d: &Digest,
        what: impl Into<String>,
        images: impl IntoIterator<Item = &'a String>,
    ) -> Problem {
        Problem {
            subject: Subject::Blob(d.clone()),
            what: what.into(),
            images: images.into_iter().cloned().collect(),
        }
    }

    /// A problem of file `name` (a document of the bundle, or a file beside it).
    pub fn file(name: &str, what: impl Into<String>) -> Problem {
        Problem {
            subject: Subject::File(name.to_string()),
            what: what.into(),
            images: BTreeSet::new(),
        }
    }

    /// True when the problem keeps image `source` from being pushed.
    pub fn affects(&self, source: &str) -> bool {
        self.images.contains(source)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, Escaped(&self.what))?;
        if let Subject::Blob(_) = self.subject {
            if !self.images.is_empty() {
                write!(f, " (used by {})", SomeOf(&self.images))?;
            }
        }
        Ok(())
    }
}

/// The first few names of a set, and how many more.
struct SomeOf<'a>(&'a BTreeSet<String>);

impl fmt::Display for SomeOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 5;
        for (i, n) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", Escaped(n))?;
        }
        match self.0.len().saturating_sub(SHOWN) {
            0 => Ok(()),
            more => write!(f, " and {more} more"),
        }
    }
}

impl serde::Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let (kind, subject) = match &self.subject {
            Subject::Image(i) => ("image", i.clone()),
            Subject::Blob(d) => ("blob", d.to_string()),
            Subject::File(n) => ("file", n.clone()),
        };
        let mut st = s.serialize_struct("Problem", 4)?;
        st.serialize_field("kind", kind)?;
        st.serialize_field("subject", &subject)?;
        st.serialize_field("what", &self.what)?;
        st.serialize_field("images", &self.images)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_about_typed_subjects_and_print_escaped() {
        let a1 = Problem::image("docker.io/library/a:1", "manifest unknown");
        assert!(a1.affects("docker.io/library/a:1"));
        assert!(!a1.affects("docker.io/library/a:10"));
        assert_eq!(a1.to_string(), "docker.io/library/a:1: manifest unknown");
        let users: Vec<String> = (0..7).map(|i| format!("docker.io/x/i{i}:1")).collect();
        let d = Digest::of(b"x");
        let b = Problem::blob(&d, "wrong digest", &users);
        assert!(b.affects("docker.io/x/i6:1") && !b.affects("docker.io/x/i7:1"));
        assert_eq!(
            b.to_string(),
            format!("blob {d}: wrong digest (used by docker.io/x/i0:1, docker.io/x/i1:1, docker.io/x/i2:1, docker.io/x/i3:1, docker.io/x/i4:1 and 2 more)")
        );
        let hostile = Problem::image("x:1\u{1b}[2J\nOK", "target \"\u{1b}]0;\"");
        assert_eq!(
            hostile.to_string(),
            "x:1\\u{1b}[2J\\nOK: target \"\\u{1b}]0;\""
        );
        let f = Problem::file("bundle.json", "its totals disagree");
        assert!(f.images.is_empty());
        assert_eq!(f.to_string(), "file bundle.json: its totals disagree");
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["kind"], "blob");
        assert_eq!(v["subject"], d.to_string());
    }
}
