//! `airlock list`: the images a Rancher 1.6 release needs, offline.

use airlock::catalog;
use anyhow::Result;

use super::cli::{ListArgs, OutputFormat};
use super::{out, print_error, selection, upstream_options};

pub fn run(args: ListArgs) -> Result<i32> {
    if args.versions {
        print_text(&airlock::list::render_versions());
        return Ok(0);
    }
    let sel = selection(&args.select)?;
    let (relocations, pins) = upstream_options(&args.upstream)?;
    let mut selected = match catalog::Selected::resolve(&sel) {
        // Rancher 2 is another product, not a mistyped 1.6 release: a usage error.
        Err(e @ catalog::CatalogError::OutOfScope { .. }) => {
            print_error(&e.into());
            return Ok(2);
        }
        r => r?,
    };
    selected.with_upstream(&relocations, &pins);
    let text = match args.output {
        OutputFormat::Text => airlock::list::render_text(&sel.version, &selected),
        OutputFormat::Json => airlock::list::render_json(&sel.version, &selected),
    };
    print_text(&text);
    Ok(0)
}

/// Prints rendered lines (each ending with a newline) as they are.
fn print_text(text: &str) {
    out(text.strip_suffix('\n').unwrap_or(text));
}
