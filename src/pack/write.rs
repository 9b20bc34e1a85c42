//! Writing the bundle from the cache: its layout, the temporary file or parts, the sidecar,
//! and the free-space check before any of it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::fetch::Counting;
use super::{PackError, PackOptions, Platforms, Resolved, Wanted};
use crate::background::Background;
use crate::bundle::format::{
    self, BaseRef, BlobTotals, BundleManifest, Failure, ImageRecord, OciIndex, OmittedBlob, Request,
};
use crate::bundle::limits::MAX_JSON_BYTES;
use crate::bundle::writer::BundleWriter;
use crate::cache::Cache;
use crate::digest::{Digest, HashingWriter};
use crate::parts::{self, SplitWriter};
use crate::progress::{Phase, Reporter};
use crate::safe_write::{sync_dir, temp_path_for, write_file, TempGuard};
use crate::writeback::DropBehind;

/// What goes into the bundle, in order.
pub(super) struct Layout {
    pub(super) records: Vec<ImageRecord>,
    manifests: BTreeMap<Digest, (String, Vec<u8>)>,
    configs: BTreeMap<Digest, u64>,
    /// Configs airlock wrote (schema 1 conversions), among `configs`: written from memory.
    generated: BTreeMap<Digest, Vec<u8>>,
    layers: BTreeMap<Digest, u64>,
    pub(super) omitted: Vec<OmittedBlob>,
    pub(super) bytes_summed: u64,
}

impl Layout {
    pub(super) fn of(
        images: &[&Resolved],
        wanted: &BTreeMap<Digest, Wanted>,
        generated: &BTreeMap<Digest, Vec<u8>>,
        omit: &dyn Fn(&Digest) -> bool,
    ) -> Layout {
        let mut images: Vec<&Resolved> = images.to_vec();
        images.sort_by(|a, b| a.record.source.cmp(&b.record.source));
        let mut manifests: BTreeMap<Digest, (String, Vec<u8>)> = BTreeMap::new();
        let mut configs: BTreeMap<Digest, u64> = BTreeMap::new();
        let mut layers: BTreeMap<Digest, u64> = BTreeMap::new();
        let mut bytes_summed = 0;
        for r in &images {
            // A report figure only; the sizes were added up checked before any download.
            bytes_summed = r.record.total_bytes.saturating_add(bytes_summed);
            for (d, mt, raw) in &r.manifests {
                manifests.insert(d.clone(), (mt.clone(), raw.clone()));
            }
            for b in &r.blobs {
                if generated.contains_key(&b.digest) || wanted[&b.digest].is_config {
                    configs.insert(b.digest.clone(), b.size);
                } else {
                    layers.insert(b.digest.clone(), b.size);
                }
            }
        }
        // A digest that is a manifest is written once, as a manifest.
        configs.retain(|d, _| !manifests.contains_key(d));
        layers.retain(|d, _| !manifests.contains_key(d) && !configs.contains_key(d));
        // Manifests always travel (they are small and pushed by unpack); configs and layers
        // the base carries are left out and listed.
        let mut omitted: Vec<OmittedBlob> = Vec::new();
        for m in [&mut configs, &mut layers] {
            m.retain(|d, size| {
                if omit(d) {
                    omitted.push(OmittedBlob {
                        digest: d.clone(),
                        size: *size,
                    });
                    false
                } else {
                    true
                }
            });
        }
        omitted.sort();
        let generated = configs
            .keys()
            .filter_map(|d| generated.get(d).map(|raw| (d.clone(), raw.clone())))
            .collect();
        Layout {
            records: images.iter().map(|r| r.record.clone()).collect(),
            manifests,
            configs,
            generated,
            layers,
            omitted,
            bytes_summed,
        }
    }

    pub(super) fn blob_count(&self) -> u64 {
        (self.manifests.len() + self.configs.len() + self.layers.len()) as u64
    }

    /// Bytes of the distinct blobs the bundle carries. Checked before any download to fit in
    /// 64 bits (the whole is no larger than the estimate `pack` checked).
    pub(super) fn bytes_dedup(&self) -> u64 {
        let manifests = self.manifests.values().map(|(_, raw)| raw.len() as u64);
        let blobs = self.configs.values().chain(self.layers.values()).copied();
        crate::space::total(manifests.chain(blobs)).unwrap_or(u64::MAX)
    }
}

/// Writes the bundle for `layout`; `ready` is asked before each config and layer and waits
/// until it is in the cache (or says why it never will be).
pub(super) fn write_layout(
    cache: &Cache,
    layout: &Layout,
    failures: &[Failure],
    request: Request,
    opts: &PackOptions,
    ready: &(dyn Fn(&Digest) -> Result<(), String> + Sync),
    reporter: &dyn Reporter,
) -> Result<(u64, Digest, Vec<PathBuf>), PackError> {
    let base = opts.base.as_ref().map(|b| BaseRef {
        omitted_blobs: layout.omitted.clone(),
        ..b.record.clone()
    });
    let bundle = BundleManifest {
        format: format::FORMAT_NAME.into(),
        format_version: format::FORMAT_VERSION,
        airlock_version: env!("CARGO_PKG_VERSION").into(),
        created: opts.created,
        request,
        platforms: match &opts.platforms {
            Platforms::One(p) => vec![p.to_string()],
            Platforms::Several(ps) => ps.iter().map(|p| p.to_string()).collect(),
            Platforms::All => vec!["all".into()],
        },
        images: layout.records.clone(),
        failures: failures.to_vec(),
        blobs: BlobTotals {
            count: layout.blob_count(),
            bytes: layout.bytes_dedup(),
        },
        base,
    };
    let index = OciIndex::for_images(&layout.records);
    reporter.phase(Phase::Write, layout.bytes_dedup());
    let r = write_bundle(cache, opts, &bundle, &index, layout, ready, reporter);
    reporter.finish_phase(Phase::Write);
    r
}

/// The bundle size for `content` bytes in `entries` tar entries: tar headers and padding,
/// zstd frame overhead (layers are gzip and do not shrink), the seek table, plus 1%.
pub fn estimate_bundle(content: u64, entries: u64) -> u64 {
    // Saturating: an absurd estimate must stay absurd (and fail the space check), never wrap.
    let tar = content
        .saturating_add(entries.saturating_mul(1024))
        .saturating_add(1024);
    let frames = entries
        .saturating_mul(2)
        .saturating_add(content / (4 << 20) + 1);
    let zstd = frames.saturating_mul(18 + 12).saturating_add(17);
    let sum = tar.saturating_add(zstd);
    sum.saturating_add(sum / 100).saturating_add(64 << 10)
}

/// Refuses to start writing when `split` would cut the bundle into more parts than readers
/// accept, or when the output's file system cannot hold a bundle of `needed` bytes plus
/// `scratch` bytes of temporary downloads, and warns when one file over 4 GiB would go to a
/// FAT file system.
pub(super) fn check_space(
    output: &Path,
    needed: u64,
    scratch: u64,
    split: Option<u64>,
    reporter: &dyn Reporter,
) -> Result<(), PackError> {
    if let Some(size) = split {
        parts::check_split(size, needed).map_err(PackError::Split)?;
    }
    let dir = crate::space::output_dir(output);
    let info = crate::space::measure(&dir).map_err(|source| PackError::Measure {
        dir: dir.clone(),
        source,
    })?;
    if info.available < needed.saturating_add(scratch) {
        return Err(PackError::NoSpace {
            dir,
            needed: needed.saturating_add(scratch),
            available: info.available,
        });
    }
    if let Some(w) = fat_warning(&info, needed, split) {
        reporter.warn(&w);
    }
    Ok(())
}

/// The warning due when the largest file of a bundle of about `needed` bytes (cut into `split`
/// parts, if set) would not fit FAT32's 4 GiB file limit on the file system `info` describes.
fn fat_warning(info: &crate::space::FsInfo, needed: u64, split: Option<u64>) -> Option<String> {
    let largest = split.map_or(needed, |s| s.min(needed));
    (info.is_fat() && largest > parts::FAT32_MAX_FILE).then(|| {
        format!(
            "{} is on a FAT file system, which cannot hold a file over 4 GiB, and the bundle will be about {needed} bytes: use --split fat32",
            info.dir.display()
        )
    })
}

/// Where the bundle's bytes go: one file, or parts.
pub(super) enum Out {
    One(HashingWriter<BufWriter<DropBehind>>),
    Split(Box<HashingWriter<SplitWriter>>),
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::One(w) => w.write(buf),
            Out::Split(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::One(w) => w.flush(),
            Out::Split(w) => w.flush(),
        }
    }
}

/// The error of a failed write of `output`: a full disk said as such.
fn write_error(output: &Path, source: io::Error) -> PackError {
    if crate::space::is_no_space(&source) {
        PackError::Full {
            path: output.to_path_buf(),
            dir: crate::space::output_dir(output),
            source,
        }
    } else {
        PackError::Write {
            path: output.to_path_buf(),
            source,
        }
    }
}

/// `index.json` and `bundle.json` as written, refused when larger than readers accept.
fn metadata_json(
    index: &OciIndex,
    bundle: &BundleManifest,
) -> Result<(Vec<u8>, Vec<u8>), PackError> {
    let index_json = serde_json::to_vec_pretty(index).expect("index.json serialises");
    let bundle_json = serde_json::to_vec_pretty(bundle).expect("bundle.json serialises");
    for (name, json) in [
        (format::INDEX_JSON, &index_json),
        (format::BUNDLE_JSON, &bundle_json),
    ] {
        if json.len() as u64 > MAX_JSON_BYTES {
            return Err(PackError::Limit {
                reason: format!(
                    "its {name} would be {} bytes, more than the {MAX_JSON_BYTES} readers accept; pack fewer images per bundle",
                    json.len()
                ),
            });
        }
    }
    Ok((index_json, bundle_json))
}

/// Writes the bundle of `layout` to `opts.output` (or its parts): a temporary name, fsync,
/// rename, then the checksum file (and `parts.json`).
pub(super) fn write_bundle(
    cache: &Cache,
    opts: &PackOptions,
    bundle: &BundleManifest,
    index: &OciIndex,
    layout: &Layout,
    ready: &(dyn Fn(&Digest) -> Result<(), String> + Sync),
    reporter: &dyn Reporter,
) -> Result<(u64, Digest, Vec<PathBuf>), PackError> {
    let output = opts.output.as_path();
    let werr = |source: io::Error| write_error(output, source);
    let (index_json, bundle_json) = metadata_json(index, bundle)?;
    let tmp = temp_path_for(output);
    let mut guard = TempGuard::new(tmp.clone());
    let out = match opts.split {
        None => {
            let file = File::create(&tmp).map_err(werr)?;
            Out::One(HashingWriter::new(BufWriter::with_capacity(
                1 << 20,
                DropBehind::new(file),
            )))
        }
        Some(size) => {
            guard.keep();
            Out::Split(Box::new(HashingWriter::new(SplitWriter::new(output, size))))
        }
    };
    // Hashing and writing run on their own thread, overlapping with encoding the next frames.
    let mut w = BundleWriter::new(Background::new(out), &opts.write);
    w.add_bytes(format::OCI_LAYOUT, format::OCI_LAYOUT_CONTENT)
        .map_err(werr)?;
    w.add_bytes(format::INDEX_JSON, &index_json).map_err(werr)?;
    w.add_bytes(format::BUNDLE_JSON, &bundle_json)
        .map_err(werr)?;
    for (d, (_, raw)) in &layout.manifests {
        w.add_bytes(&format::blob_entry(d), raw).map_err(werr)?;
        reporter.advance(Phase::Write, raw.len() as u64);
    }
    let transient = matches!(opts.cache, super::CacheMode::Transient { .. });
    for (d, size) in layout.configs.iter().chain(layout.layers.iter()) {
        if let Some(raw) = layout.generated.get(d) {
            w.add_bytes(&format::blob_entry(d), raw).map_err(werr)?;
            reporter.advance(Phase::Write, raw.len() as u64);
            continue;
        }
        ready(d).map_err(|error| PackError::BlobFailed {
            digest: d.clone(),
            error,
        })?;
        // Every cached blob was hashed when it was downloaded or found in the cache during
        // this run; it is not hashed a third time here.
        let file = cache.open_blob(d)?;
        let mut r = Counting {
            inner: file,
            reporter,
            phase: Phase::Write,
        };
        w.add_reader(&format::blob_entry(d), *size, &mut r)
            .map_err(werr)?;
        if transient {
            // Gone before the kernel writes it back: only the bundle reaches the disk.
            let _ = fs::remove_file(cache.path(d));
        }
    }
    let out = w.finish().and_then(Background::finish).map_err(werr)?;
    finish(out, output, &tmp, guard)
}

/// Puts the written bundle under its final name(s): the file fsynced and renamed, or the
/// parts renamed with their `parts.json`; then the checksum file.
fn finish(
    out: Out,
    output: &Path,
    tmp: &Path,
    mut guard: TempGuard,
) -> Result<(u64, Digest, Vec<PathBuf>), PackError> {
    let werr = |source: io::Error| write_error(output, source);
    let side = parts::sidecar_path(output);
    match out {
        Out::One(out) => {
            let (sha, len, buf) = out.finish();
            let file = buf
                .into_inner()
                .map_err(|e| werr(e.into_error()))?
                .into_inner();
            file.sync_all().map_err(werr)?;
            drop(file);
            fs::rename(tmp, output).map_err(werr)?;
            guard.keep();
            sync_dir(output);
            let name = output
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            crate::sidecar::write(&side, &[(sha.clone(), name.clone())], &[(name, len)])
                .map_err(werr)?;
            Ok((len, sha, vec![output.to_path_buf()]))
        }
        Out::Split(out) => {
            let (sha, len, sw) = (*out).finish();
            let layout = sw.finish().map_err(werr)?;
            let files: Vec<PathBuf> = (0..layout.parts.len())
                .map(|i| parts::part_path(output, i))
                .collect();
            let written = (|| {
                let raw = serde_json::to_vec_pretty(&layout).expect("parts manifest serialises");
                write_file(&parts::manifest_path(output), &raw)?;
                let lines: Vec<(Digest, String)> = layout
                    .parts
                    .iter()
                    .map(|p| (p.sha256.clone(), p.name.clone()))
                    .collect();
                let sizes: Vec<(String, u64)> = layout
                    .parts
                    .iter()
                    .map(|p| (p.name.clone(), p.size))
                    .collect();
                crate::sidecar::write(&side, &lines, &sizes)
            })();
            if let Err(e) = written {
                // Without their layout the parts cannot be read: take them back.
                for f in &files {
                    let _ = fs::remove_file(f);
                }
                let _ = fs::remove_file(parts::manifest_path(output));
                return Err(werr(e));
            }
            Ok((len, sha, files))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{FsInfo, MSDOS_SUPER_MAGIC};

    fn fs(fs_type: i64) -> FsInfo {
        FsInfo {
            dir: PathBuf::from("/media/usb"),
            available: u64::MAX,
            fs_type,
        }
    }

    #[test]
    fn warns_only_when_one_file_would_pass_the_fat32_limit() {
        const EXT4_SUPER_MAGIC: i64 = 0xEF53;
        let big = parts::FAT32_MAX_FILE + 1;
        let w = fat_warning(&fs(MSDOS_SUPER_MAGIC), big, None).expect("one 4 GiB file on FAT");
        assert!(
            w.contains("/media/usb") && w.contains("--split fat32"),
            "{w}"
        );
        assert_eq!(
            fat_warning(&fs(MSDOS_SUPER_MAGIC), parts::FAT32_MAX_FILE, None),
            None
        );
        assert_eq!(fat_warning(&fs(EXT4_SUPER_MAGIC), big, None), None);
        let fat32_parts = parts::FAT32_MAX_FILE;
        assert_eq!(
            fat_warning(&fs(MSDOS_SUPER_MAGIC), 3 * big, Some(fat32_parts)),
            None
        );
        assert!(fat_warning(&fs(MSDOS_SUPER_MAGIC), 3 * big, Some(big)).is_some());
    }
}
