//! Implementations of the `ikon img` commands.

use super::named::Named;
use super::{progress, OutputFormat, SourceArgs, EXIT_ERROR, EXIT_LEAKS, EXIT_NO, EXIT_OK};
use anyhow::{anyhow, Context, Result};
use ikon_disk::convert::{self, Comparison, CopyOptions};
use ikon_disk::{
    BlockDevice, CreateOptions, DiskImage, Extent, ExtentKind, ExternalPolicy, Format, OpenOptions,
};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn open_options(format: Option<&str>, allow: Option<&Path>) -> Result<OpenOptions> {
    let mut o = OpenOptions::default();
    if let Some(f) = format {
        o.format = Some(Format::parse(f)?);
    }
    if let Some(dir) = allow {
        o.policy = ExternalPolicy::allow_dir(dir)?;
    }
    Ok(o)
}

/// Open a source image; its errors, now and later, name `path`.
pub(super) fn open_src(path: &Path, src: &SourceArgs) -> Result<Box<dyn DiskImage>> {
    let o = open_options(src.format.as_deref(), src.allow_external.as_deref())?;
    Ok(Named::wrap(ikon_disk::open(path, &o)?, path))
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.3} {}", UNITS[u]).replace(".000 ", " ")
    }
}

/// Guest bytes one map query covers: images are mapped in windows so that a huge sparse
/// disk's extent list is never built whole.
const MAP_WINDOW: u64 = 1 << 34;

/// Calls `f` on every extent of `img`, in guest order.
pub(super) fn each_extent(
    img: &dyn BlockDevice,
    mut f: impl FnMut(&Extent),
) -> ikon_disk::Result<()> {
    let mut pos = 0;
    let len = img.len();
    while pos < len {
        let win = (len - pos).min(MAP_WINDOW);
        for e in img.map(pos, win)? {
            f(&e);
        }
        pos += win;
    }
    Ok(())
}

/// Guest bytes by extent kind: (data, zero, unallocated).
fn allocation(img: &dyn DiskImage) -> Result<(u64, u64, u64)> {
    let (mut d, mut z, mut u) = (0, 0, 0);
    each_extent(img, |e| match e.kind {
        ExtentKind::Data => d += e.len,
        ExtentKind::Zero => z += e.len,
        ExtentKind::Unallocated => u += e.len,
    })?;
    Ok((d, z, u))
}

/// `ikon img info`.
pub fn info(path: &Path, src: &SourceArgs, output: OutputFormat) -> Result<u8> {
    let img = open_src(path, src)?;
    let info = img.info();
    let meta = std::fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
    let actual = meta.blocks().saturating_mul(512);
    let (data, zero, unalloc) = allocation(img.as_ref())?;
    match output {
        OutputFormat::Json => {
            let details: serde_json::Map<String, Value> = info
                .details
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let doc = json!({
                "filename": path.display().to_string(),
                "format": info.format.name(),
                "qemu-format": info.format.qemu_name(),
                "subformat": info.subformat,
                "virtual-size": info.virtual_size,
                "actual-size": actual,
                "file-length": meta.len(),
                "cluster-size": info.cluster_size,
                "data-bytes": data,
                "zero-bytes": zero,
                "unallocated-bytes": unalloc,
                "external-files": info.external_files,
                "details": details,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Human => {
            println!("image: {}", path.display());
            println!("file format: {}", info.format);
            if let Some(s) = &info.subformat {
                println!("subformat: {s}");
            }
            println!(
                "virtual size: {} ({} bytes)",
                human_size(info.virtual_size),
                info.virtual_size
            );
            println!("disk size: {}", human_size(actual));
            if let Some(c) = info.cluster_size {
                println!("cluster_size: {c}");
            }
            println!(
                "guest data: {} (zero {}, unallocated {})",
                human_size(data),
                human_size(zero),
                human_size(unalloc)
            );
            for f in &info.external_files {
                println!("external file: {f}");
            }
            if !info.details.is_empty() {
                println!("Format specific information:");
                for (k, v) in &info.details {
                    println!("    {k}: {v}");
                }
            }
        }
    }
    Ok(EXIT_OK)
}

/// Arguments of `ikon img convert`.
pub struct ConvertArgs<'a> {
    pub output_format: &'a str,
    pub options: &'a [String],
    pub compress: bool,
    pub show_progress: bool,
    pub threads: Option<usize>,
    pub cache: &'a str,
    pub src: &'a SourceArgs,
    pub source: &'a Path,
    pub dest: &'a Path,
}

fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.ikon-{}.tmp", std::process::id()))
}

/// `ikon img convert`: writes to a temporary file beside the destination and renames it into
/// place only when complete, so an interrupted conversion leaves no half-written image.
pub fn convert(a: &ConvertArgs<'_>) -> Result<u8> {
    let src = open_src(a.source, a.src)?;
    let format = Format::parse(a.output_format)?;
    let mut co = CreateOptions::new(format, src.len());
    for o in a.options {
        co.apply(o)?;
    }
    co.compress |= a.compress;
    co.cache = ikon_disk::CacheMode::parse(a.cache)?;
    co.name_hint = a.dest.file_name().map(|n| n.to_string_lossy().into_owned());
    if let Some(t) = a.threads {
        co.threads = t.max(1);
    }
    let mut copy = CopyOptions::default();
    if let Some(t) = a.threads {
        copy.threads = t.max(1);
    }
    let tmp = temp_path(a.dest);
    let result = (|| -> Result<convert::CopyStats> {
        let writer = ikon_disk::create(&tmp, &co)?;
        // The bar counts the source's data, the part of the copy that takes time.
        let data = a
            .show_progress
            .then(|| progress::DataProgress::of(src.as_ref()))
            .flatten();
        let bar = progress::bar(
            data.as_ref().map_or(src.len(), |d| d.total),
            a.show_progress,
        );
        let stats = convert::convert(src.as_ref(), writer, copy, &mut |done, _| {
            bar.set_position(data.as_ref().map_or(done, |d| d.at(done)))
        })?;
        bar.finish_and_clear();
        std::fs::rename(&tmp, a.dest)
            .with_context(|| format!("rename into {}", a.dest.display()))?;
        Ok(stats)
    })();
    match result {
        Ok(_) => Ok(EXIT_OK),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            // The temporary file is ours; the user knows the destination they typed. Errors
            // reading the source name the source already; the rest are about the destination.
            let text =
                format!("{e:#}").replace(&tmp.display().to_string(), &a.dest.display().to_string());
            let dest = a.dest.display().to_string();
            if text.contains(&dest) || text.contains(&a.source.display().to_string()) {
                Err(anyhow::anyhow!("{text}"))
            } else {
                Err(anyhow::anyhow!("{dest}: {text}"))
            }
        }
    }
}

/// `ikon img check`.
pub fn check(path: &Path, src: &SourceArgs, output: OutputFormat) -> Result<u8> {
    let img = open_src(path, src)?;
    let r = img.check()?;
    let code = if !r.is_clean() {
        EXIT_NO
    } else if r.leaks > 0 {
        EXIT_LEAKS
    } else {
        EXIT_OK
    };
    match output {
        OutputFormat::Json => {
            let doc = json!({
                "filename": path.display().to_string(),
                "format": img.info().format.name(),
                "check-errors": r.corruptions.len(),
                "corruptions": r.corruptions,
                "leaks": r.leaks,
                "allocated-clusters": r.allocated_clusters,
                "total-clusters": r.total_clusters,
                "fragmented-clusters": r.fragmented_clusters,
                "compressed-clusters": r.compressed_clusters,
                "clean": r.is_clean(),
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Human => {
            for c in &r.corruptions {
                println!("ERROR: {c}");
            }
            if r.is_clean() && r.leaks == 0 {
                println!("No errors were found on the image.");
            } else {
                println!("{} errors were found on the image.", r.corruptions.len());
                if r.leaks > 0 {
                    println!("{} leaked clusters were found on the image.", r.leaks);
                }
            }
            if r.total_clusters > 0 {
                let pct = r.allocated_clusters as f64 * 100.0 / r.total_clusters as f64;
                println!(
                    "{}/{} = {pct:.2}% allocated, {} compressed clusters",
                    r.allocated_clusters, r.total_clusters, r.compressed_clusters
                );
            }
        }
    }
    Ok(code)
}

/// `ikon img compare`.
pub fn compare(
    a: &Path,
    b: &Path,
    fa: Option<String>,
    fb: Option<String>,
    strict: bool,
    allow: Option<PathBuf>,
    quiet: bool,
) -> Result<u8> {
    let ia = Named::wrap(
        ikon_disk::open(a, &open_options(fa.as_deref(), allow.as_deref())?)?,
        a,
    );
    let ib = Named::wrap(
        ikon_disk::open(b, &open_options(fb.as_deref(), allow.as_deref())?)?,
        b,
    );
    let r = convert::compare(ia.as_ref(), ib.as_ref(), strict, CopyOptions::default())?;
    let (code, msg) = match r {
        Comparison::Identical => (EXIT_OK, "Images are identical.".to_string()),
        Comparison::DiffersAt(off) => (EXIT_NO, format!("Content mismatch at offset {off}!")),
        Comparison::SizeDiffers(x, y) => (
            EXIT_NO,
            format!("Strict mode: Image size mismatch! ({x} vs {y})"),
        ),
    };
    if !quiet {
        println!("{msg}");
    }
    Ok(code)
}

/// `ikon img map`.
pub fn map(path: &Path, src: &SourceArgs, output: OutputFormat) -> Result<u8> {
    let img = open_src(path, src)?;
    let mut first = true;
    if output == OutputFormat::Json {
        println!("[");
    } else {
        println!("{:<20}{:<20}{:<12}Compressed", "Offset", "Length", "Kind");
    }
    each_extent(img.as_ref(), |e| match output {
        OutputFormat::Json => {
            let doc = json!({
                "start": e.offset,
                "length": e.len,
                "present": e.kind != ExtentKind::Unallocated,
                "zero": e.kind != ExtentKind::Data,
                "data": e.kind == ExtentKind::Data,
                "compressed": e.compressed,
            });
            println!("{}{}", if first { "" } else { "," }, doc);
            first = false;
        }
        OutputFormat::Human => {
            let kind = match e.kind {
                ExtentKind::Data => "data",
                ExtentKind::Zero => "zero",
                ExtentKind::Unallocated => "unallocated",
            };
            println!(
                "{:<#20x}{:<#20x}{:<12}{}",
                e.offset, e.len, kind, e.compressed
            );
        }
    })?;
    if output == OutputFormat::Json {
        println!("]");
    }
    Ok(EXIT_OK)
}

/// `ikon img create`.
pub fn create(format: &str, options: &[String], file: &Path, size: &str) -> Result<u8> {
    let format = Format::parse(format)?;
    let size = ikon_disk::writer::parse_size(size)?;
    let mut co = CreateOptions::new(format, size);
    for o in options {
        co.apply(o)?;
    }
    co.name_hint = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let w = ikon_disk::create(file, &co).map_err(|e| anyhow!(e))?;
    w.finish()?;
    let _ = EXIT_ERROR;
    Ok(EXIT_OK)
}
