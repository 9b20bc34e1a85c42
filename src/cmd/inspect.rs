//! `airlock inspect`: what a bundle holds, from its `bundle.json` alone (read through the
//! seek table: no layer is decompressed). Everything shown comes from the bundle, so every
//! string is escaped.

use std::fmt::Write as _;

use airlock::bundle::format::BundleManifest;
use airlock::escape::Escaped;
use airlock::units::{bytes as human_bytes, count};
use anyhow::Result;

use super::cli::{InspectArgs, OutputFormat};
use super::{exit, json, out};

pub fn run(args: InspectArgs) -> Result<i32> {
    let (reader, _) = airlock::parts::open_bundle(&args.bundle)?;
    let bundle = reader.bundle_manifest()?;
    match args.format {
        OutputFormat::Json => json::print(
            "inspect",
            true,
            serde_json::json!({ "bundle": args.bundle, "bundleJson": bundle }),
        )?,
        OutputFormat::Text => out(render(&bundle).trim_end()),
    }
    Ok(exit::OK)
}

/// The text `airlock inspect` prints.
fn render(b: &BundleManifest) -> String {
    let mut s = String::new();
    let what = match (&b.request.rancher_version, &b.request.image_list) {
        (Some(v), _) => {
            let mut parts = Vec::new();
            if !b.request.k8s_templates.is_empty() {
                parts.push(format!(
                    "k8s templates: {}",
                    Escaped(&b.request.k8s_templates.join(", "))
                ));
            }
            if b.request.server.is_some() {
                parts.push("server group".to_string());
            }
            format!("Rancher {} ({})", Escaped(v), parts.join("; "))
        }
        (None, Some(l)) => format!("image list {} ({})", Escaped(&l.file), l.sha256.short()),
        (None, None) => "images".to_string(),
    };
    let _ = writeln!(
        s,
        "bundle format {} v{}, written by airlock {}",
        Escaped(&b.format),
        b.format_version,
        Escaped(&b.airlock_version)
    );
    let _ = writeln!(
        s,
        "{what}; platforms: {}; {}, {}, {}",
        Escaped(&b.platforms.join(", ")),
        count(b.images.len(), "image"),
        count(b.blobs.count, "blob"),
        human_bytes(b.blobs.bytes)
    );
    for i in &b.images {
        let _ = writeln!(s, "{}", Escaped(&i.source));
        let _ = writeln!(s, "    target:  {}", Escaped(&i.target));
        for a in &i.alt_targets {
            let _ = writeln!(s, "    also:    {}", Escaped(a));
        }
        let _ = writeln!(s, "    digest:  {} ({})", i.digest, Escaped(&i.media_type));
        if let Some(f) = &i.from_index {
            let _ = writeln!(
                s,
                "    from:    {} index {}",
                Escaped(&f.platform),
                f.digest
            );
        }
        if let Some(u) = &i.upstream {
            if u.fetched_from != i.source {
                let _ = writeln!(s, "    fetched: {}", Escaped(&u.fetched_from));
            }
            if let Some(c) = &u.conversion {
                let _ = writeln!(
                    s,
                    "    converted from {} ({}): {}",
                    u.digest,
                    Escaped(&u.media_type),
                    Escaped(&c.reason)
                );
                for d in &c.dropped {
                    let _ = writeln!(
                        s,
                        "    left out: {} ({}{})",
                        d.digest,
                        Escaped(&d.reason),
                        d.platform
                            .as_ref()
                            .map(|p| format!(", {}", Escaped(p)))
                            .unwrap_or_default()
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "    size:    {}  group: {}",
            human_bytes(i.total_bytes),
            Escaped(&i.group)
        );
    }
    for f in &b.failures {
        let _ = writeln!(s, "MISSING {}: {}", Escaped(&f.source), Escaped(&f.error));
    }
    s
}
