//! How airlock says numbers to an operator: sizes in binary (IEC) units, as `ls -h`, `du -h`,
//! `df -h` and the progress bars count them (1 MiB = 1024 KiB = 1,048,576 bytes), and counts
//! with their noun in the right number ("1 image", "2 images"). Every size and count on
//! screen goes through here, so a bar and the summary after it always agree.
//!
//! JSON documents carry exact byte counts, never these strings.

/// `n` bytes in binary units, one decimal above 1 KiB: `999 B`, `1.5 KiB`, `2.9 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A rate in binary units per second: `12.3 MiB/s`.
pub fn rate(bytes_per_sec: f64) -> String {
    format!("{}/s", bytes(bytes_per_sec.max(0.0) as u64))
}

/// A duration the way an operator reads it: `45 s`, `3 min 20 s`, `1 h 05 min`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {:02} s", secs / 60, secs % 60),
        _ => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
    }
}

/// `n` and `noun`, the noun in the plural unless `n` is 1: `count(1, "image")` is `1 image`,
/// `count(3, "image")` is `3 images`. For nouns with an irregular plural, [`count_as`].
pub fn count(n: impl Count, noun: &str) -> String {
    let n = n.get();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `n` and the singular or plural given: `count_as(2, "entry", "entries")` is `2 entries`.
pub fn count_as(n: impl Count, singular: &str, plural: &str) -> String {
    let n = n.get();
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// `is` or `are`, to agree with a count.
pub fn is_are(n: impl Count) -> &'static str {
    if n.get() == 1 {
        "is"
    } else {
        "are"
    }
}

/// `was` or `were`, to agree with a count.
pub fn was_were(n: impl Count) -> &'static str {
    if n.get() == 1 {
        "was"
    } else {
        "were"
    }
}

/// A count of things: any unsigned integer type.
pub trait Count {
    fn get(self) -> u64;
}

macro_rules! count_impl {
    ($($t:ty),*) => {$(
        impl Count for $t {
            fn get(self) -> u64 {
                self as u64
            }
        }
    )*};
}
count_impl!(u8, u16, u32, u64, usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(256 << 20), "256.0 MiB");
        assert_eq!(bytes(3_100_000_000), "2.9 GiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
        assert_eq!(rate(1.5 * 1024.0 * 1024.0), "1.5 MiB/s");
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1u64, "image"), "1 image");
        assert_eq!(count(0u64, "image"), "0 images");
        assert_eq!(count(24usize, "problem"), "24 problems");
        assert_eq!(count_as(1u64, "entry", "entries"), "1 entry");
        assert_eq!(count_as(2u64, "entry", "entries"), "2 entries");
        assert_eq!(is_are(1u64), "is");
        assert_eq!(was_were(2u64), "were");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(5), "5 s");
        assert_eq!(duration(200), "3 min 20 s");
        assert_eq!(duration(3900), "1 h 05 min");
    }
}
