//! `airlock list`: the images a Rancher 1.6 release needs, offline.

use airlock::catalog;
use anyhow::Result;

use super::cli::{ListArgs, OutputFormat};
use super::{exit, out, selection, upstream_options};

pub fn run(args: ListArgs) -> Result<i32> {
    if args.versions {
        print_text(&airlock::list::render_versions());
        return Ok(exit::OK);
    }
    let sel = selection(&args.select)?;
    let (relocations, pins) = upstream_options(&args.upstream)?;
    let mut selected = catalog::Selected::resolve(&sel)?;
    selected.with_upstream(&relocations, &pins);
    let text = match args.output {
        OutputFormat::Text => airlock::list::render_text(&sel.version, &selected),
        OutputFormat::Json => airlock::list::render_json(&sel.version, &selected),
    };
    print_text(&text);
    Ok(exit::OK)
}

/// Prints rendered lines (each ending with a newline) as they are.
fn print_text(text: &str) {
    out(text.strip_suffix('\n').unwrap_or(text));
}
