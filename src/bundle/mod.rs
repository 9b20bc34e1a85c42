//! The bundle: one seekable `tar.zst` holding an OCI image layout plus `bundle.json`
//! (see `docs/bundle-format.md`).

pub mod check;
pub mod entries;
pub mod format;
pub mod limits;
pub mod reader;
pub mod writer;

use std::fmt::Write as _;

use crate::progress::human_bytes;
use format::BundleManifest;

/// The text `airlock inspect` prints.
pub fn render_inspect(b: &BundleManifest) -> String {
    let mut s = String::new();
    let what = match (&b.request.rancher_version, &b.request.image_list) {
        (Some(v), _) => {
            let mut parts = Vec::new();
            if !b.request.k8s_templates.is_empty() {
                parts.push(format!(
                    "k8s templates: {}",
                    b.request.k8s_templates.join(", ")
                ));
            }
            if b.request.server.is_some() {
                parts.push("server group".to_string());
            }
            format!("Rancher {v} ({})", parts.join("; "))
        }
        (None, Some(l)) => format!("image list {} ({})", l.file, l.sha256.short()),
        (None, None) => "images".to_string(),
    };
    let _ = writeln!(
        s,
        "bundle format {} v{}, written by airlock {}",
        b.format, b.format_version, b.airlock_version
    );
    let _ = writeln!(
        s,
        "{what}; platforms: {}; {} images, {} blobs, {}",
        b.platforms.join(", "),
        b.images.len(),
        b.blobs.count,
        human_bytes(b.blobs.bytes)
    );
    for i in &b.images {
        let _ = writeln!(s, "{}", i.source);
        let _ = writeln!(s, "    target:  {}", i.target);
        for a in &i.alt_targets {
            let _ = writeln!(s, "    also:    {a}");
        }
        let _ = writeln!(s, "    digest:  {} ({})", i.digest, i.media_type);
        if let Some(f) = &i.from_index {
            let _ = writeln!(s, "    from:    {} index {}", f.platform, f.digest);
        }
        if let Some(u) = &i.upstream {
            if u.fetched_from != i.source {
                let _ = writeln!(s, "    fetched: {}", u.fetched_from);
            }
            if let Some(c) = &u.conversion {
                let _ = writeln!(
                    s,
                    "    converted from {} ({}): {}",
                    u.digest, u.media_type, c.reason
                );
                for d in &c.dropped {
                    let _ = writeln!(
                        s,
                        "    left out: {} ({}{})",
                        d.digest,
                        d.reason,
                        d.platform
                            .as_ref()
                            .map(|p| format!(", {p}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "    size:    {}  group: {}",
            human_bytes(i.total_bytes),
            i.group
        );
    }
    for f in &b.failures {
        let _ = writeln!(s, "MISSING {}: {}", f.source, f.error);
    }
    s
}
