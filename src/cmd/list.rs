//! `airlock list`: the images a Rancher 1.6 release needs, offline.

use airlock::catalog;
use anyhow::Result;

use super::cli::{ListArgs, ListFormat};
use super::{exit, json, out, selection, upstream_options};

pub fn run(args: ListArgs) -> Result<i32> {
    if args.versions {
        match args.format {
            ListFormat::Text => print_text(&airlock::list::render_versions()),
            ListFormat::Json => json::print(
                "list",
                true,
                Releases {
                    releases: airlock::list::versions(),
                },
            )?,
            ListFormat::Refs => catalog::releases().iter().for_each(|v| out(v)),
        }
        return Ok(exit::OK);
    }
    let sel = selection(&args.select)?;
    let (relocations, pins) = upstream_options(&args.upstream)?;
    let mut selected = catalog::Selected::resolve(&sel)?;
    selected.with_upstream(&relocations, &pins);
    match args.format {
        ListFormat::Text => print_text(&airlock::list::render_text(&sel.version, &selected)),
        ListFormat::Json => json::print(
            "list",
            true,
            airlock::list::listing(&sel.version, &selected),
        )?,
        ListFormat::Refs => print_text(&airlock::list::render_refs(&selected)),
    }
    Ok(exit::OK)
}

/// `list --versions --format json`.
#[derive(serde::Serialize)]
struct Releases {
    releases: Vec<airlock::list::KnownRelease>,
}

/// Prints rendered lines (each ending with a newline) as they are.
fn print_text(text: &str) {
    out(text.strip_suffix('\n').unwrap_or(text));
}
