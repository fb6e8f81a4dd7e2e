//! Writing new images: [`CreateOptions`] (parsed once from qemu-img style `-o key=value`
//! options) and the [`ImageWriter`] trait every output format implements. A writer receives
//! runs of non-zero data in increasing guest order; everything it is never given reads as
//! zeros in the finished image.

use crate::error::{Error, Result};
use crate::Format;

/// Compression algorithm for formats that compress clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zlib/deflate (qcow2 default, the only one VMDK uses).
    Zlib,
    /// Zstandard (qcow2 v3 `compression_type=zstd`).
    Zstd,
}

/// Everything a new image can be asked to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// Output format.
    pub format: Format,
    /// Virtual size in bytes.
    pub size: u64,
    /// Subformat: VHD `dynamic`/`fixed`; VMDK `monolithicSparse`/`streamOptimized`.
    pub subformat: Option<String>,
    /// Compress data clusters (qcow2 `-c`; implied by VMDK streamOptimized).
    pub compress: bool,
    /// Compression algorithm (qcow2 only; zstd needs compat 1.1).
    pub compression: Compression,
    /// Cluster size (qcow2) or grain size (VMDK) in bytes.
    pub cluster_size: Option<u64>,
    /// qcow2 compat level: "0.10" or "1.1".
    pub compat: Option<String>,
    /// qcow2 extended L2 entries (subclusters).
    pub extended_l2: bool,
    /// VHD: use the exact size instead of a CHS-rounded one.
    pub force_size: bool,
    /// Threads for compression (defaults to the number of CPUs).
    pub threads: usize,
    /// The file name the image will finally have (formats that record their own name, like
    /// a VMDK descriptor's extent line, use it; the file may be written under a temporary
    /// name and renamed).
    pub name_hint: Option<String>,
    /// How the output file is written (files only; `qemu-img convert -t`).
    pub cache: crate::storage::CacheMode,
}

impl CreateOptions {
    /// Defaults for `format` at `size`.
    pub fn new(format: Format, size: u64) -> Self {
        CreateOptions {
            format,
            size,
            subformat: None,
            compress: false,
            compression: Compression::Zlib,
            cluster_size: None,
            compat: None,
            extended_l2: false,
            force_size: false,
            threads: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
            name_hint: None,
            cache: crate::storage::CacheMode::None,
        }
    }

    /// Apply a comma-separated qemu-img style option list (`subformat=fixed,cluster_size=1M`).
    pub fn apply(&mut self, list: &str) -> Result<()> {
        for item in list.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').unwrap_or((item, "on"));
            match k {
                "subformat" => self.subformat = Some(v.to_string()),
                "compression_type" => {
                    self.compression = match v {
                        "zlib" => Compression::Zlib,
                        "zstd" => Compression::Zstd,
                        _ => {
                            return Err(Error::invalid(format!(
                                "compression_type {v:?}: expected zlib or zstd"
                            )))
                        }
                    }
                }
                "cluster_size" | "grain_size" => self.cluster_size = Some(parse_size(v)?),
                "compat" => match v {
                    "0.10" | "v2" => self.compat = Some("0.10".into()),
                    "1.1" | "v3" => self.compat = Some("1.1".into()),
                    _ => {
                        return Err(Error::invalid(format!(
                            "compat {v:?}: expected 0.10 or 1.1"
                        )))
                    }
                },
                "extended_l2" => self.extended_l2 = parse_bool(k, v)?,
                "force_size" => self.force_size = parse_bool(k, v)?,
                "compress" | "compressed" => self.compress = parse_bool(k, v)?,
                "threads" => {
                    self.threads = v
                        .parse()
                        .map_err(|_| Error::invalid(format!("threads {v:?}: not a number")))?
                }
                "size" => self.size = parse_size(v)?,
                _ => {
                    return Err(Error::invalid(format!(
                        "unknown option {k:?} for {}",
                        self.format
                    )))
                }
            }
        }
        Ok(())
    }
}

fn parse_bool(k: &str, v: &str) -> Result<bool> {
    match v {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(Error::invalid(format!("{k}={v:?}: expected on or off"))),
    }
}

/// Parse a size with an optional binary suffix (`512`, `64k`, `1M`, `10G`, `1T`; `b` = bytes).
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_lowercase() {
                'b' => 1,
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                't' => 1 << 40,
                'p' => 1 << 50,
                _ => return Err(Error::invalid(format!("size {s:?}: unknown suffix {c:?}"))),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    if let Ok(n) = num.parse::<u64>() {
        return n
            .checked_mul(mult)
            .ok_or_else(|| Error::invalid(format!("size {s:?} is too large")));
    }
    let f: f64 = num
        .parse()
        .map_err(|_| Error::invalid(format!("size {s:?} is not a number")))?;
    let bytes = f * mult as f64;
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(Error::invalid(format!("size {s:?} is out of range")));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes as u64)
}

/// A new image being written.
pub trait ImageWriter: Send {
    /// The unit the writer allocates in; the convert engine skips all-zero units of this
    /// size and hands runs aligned to it (except at the end of the disk).
    fn granularity(&self) -> u64;
    /// Write `data` at guest `offset`. Runs arrive in increasing, non-overlapping order.
    fn write_run(&mut self, offset: u64, data: &[u8]) -> Result<()>;
    /// Write remaining metadata, flush and sync. The image is complete only after this.
    fn finish(self: Box<Self>) -> Result<()>;
}
