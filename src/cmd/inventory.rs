//! `airlock inventory`: what a registry holds, as JSON, for `pack --base-registry-inventory`.

use anyhow::{Context as _, Result};

use super::cli::{InventoryArgs, ProgressMode};
use super::progress::Stderr;
use super::{client_for, exit, out};

pub fn run(args: InventoryArgs) -> Result<i32> {
    let registry = &args.registry.host;
    let client = client_for(&args.registry_args, &args.registry)?;
    let reporter = Stderr::new(false, ProgressMode::Auto);
    let inv = client
        .observe(&reporter, || {
            airlock::inventory::collect(&client, registry, args.jobs.clamp(1, 64))
        })
        .with_context(|| format!("taking the inventory of {registry}"))?;
    out(&inv.render()?);
    Ok(exit::OK)
}
