//! VMDK text descriptors (VMware "Virtual Disk Format 1.1", "The Descriptor File"): the
//! header lines (version, CID, createType, parentFileNameHint), extent lines and the disk
//! database. Parsed with bounds on size and extent count; written for new images.

use crate::error::{Error, Result};

/// Largest descriptor accepted.
pub const MAX_DESCRIPTOR: u64 = 1 << 20;
/// Most extents accepted in one descriptor.
pub const MAX_EXTENTS: usize = 10_000;

/// Kind of one extent line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtentType {
    /// Raw data in a file, from a sector offset.
    Flat,
    /// A hosted sparse extent file.
    Sparse,
    /// Reads as zeros, no file.
    Zero,
}

/// One extent line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentLine {
    /// Size in sectors.
    pub sectors: u64,
    /// Type.
    pub kind: ExtentType,
    /// File name (empty for ZERO).
    pub file: String,
    /// Offset in sectors inside a flat file.
    pub offset: u64,
}

/// A parsed descriptor.
#[derive(Debug, Clone, Default)]
pub struct Descriptor {
    /// createType.
    pub create_type: String,
    /// Extents in guest order.
    pub extents: Vec<ExtentLine>,
    /// parentFileNameHint, for delta disks.
    pub parent: Option<String>,
    /// ddb.adapterType.
    pub adapter: Option<String>,
    /// ddb.virtualHWVersion.
    pub hw_version: Option<String>,
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').to_string()
}

/// Parse descriptor text.
pub fn parse(text: &str) -> Result<Descriptor> {
    let mut d = Descriptor::default();
    for raw in text.lines() {
        let line = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        if matches!(first, "RW" | "RDONLY" | "NOACCESS") {
            if d.extents.len() >= MAX_EXTENTS {
                return Err(Error::limit(format!(
                    "vmdk descriptor has more than {MAX_EXTENTS} extents"
                )));
            }
            d.extents.push(parse_extent(line)?);
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "createType" => d.create_type = unquote(v),
                "parentFileNameHint" => d.parent = Some(unquote(v)),
                "ddb.adapterType" => d.adapter = Some(unquote(v)),
                "ddb.virtualHWVersion" => d.hw_version = Some(unquote(v)),
                _ => {}
            }
        }
    }
    Ok(d)
}

/// The refusal of a delta disk's extent, naming its format.
pub fn delta(format: &str) -> Error {
    Error::unsupported(format!(
        "{format} delta disk: {}",
        crate::detect::VMDK_DELTA_ADVICE
    ))
}

fn parse_extent(line: &str) -> Result<ExtentLine> {
    let bad = || Error::corrupt(format!("vmdk descriptor extent line {line:?} is malformed"));
    let (head, rest) = match line.find('"') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let mut words = head.split_whitespace();
    let _access = words.next().ok_or_else(bad)?;
    let sectors: u64 = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    let kind = match words.next().ok_or_else(bad)? {
        "FLAT" | "VMFS" => ExtentType::Flat,
        "SPARSE" => ExtentType::Sparse,
        "ZERO" => ExtentType::Zero,
        "VMFSSPARSE" => return Err(delta("VMware COWD (vmfsSparse)")),
        "SESPARSE" => return Err(delta("VMware ESXi seSparse")),
        other => return Err(Error::unsupported(format!("vmdk extent type {other}"))),
    };
    let (file, after) = match rest.find('"') {
        Some(i) => (rest[..i].to_string(), &rest[i + 1..]),
        None if kind == ExtentType::Zero => (String::new(), ""),
        None => return Err(bad()),
    };
    let offset = after
        .split_whitespace()
        .next()
        .map(|w| w.parse::<u64>().map_err(|_| bad()))
        .transpose()?
        .unwrap_or(0);
    if kind != ExtentType::Zero && file.is_empty() {
        return Err(bad());
    }
    Ok(ExtentLine {
        sectors,
        kind,
        file,
        offset,
    })
}

/// CHS geometry qemu writes into a new descriptor (16 heads, 63 sectors).
fn cylinders(sectors: u64) -> u64 {
    (sectors / (16 * 63)).min(16383)
}

/// Descriptor text for a new single-file image of `sectors` sectors named `file`.
pub fn build(create_type: &str, sectors: u64, file: &str, cid: u32) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nCID={cid:08x}\nparentCID=ffffffff\ncreateType=\"{create_type}\"\n\n\
         # Extent description\nRW {sectors} SPARSE \"{file}\"\n\n\
         # The Disk Data Base\n#DDB\n\n\
         ddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"{}\"\nddb.geometry.heads = \"16\"\n\
         ddb.geometry.sectors = \"63\"\nddb.adapterType = \"ide\"\n",
        cylinders(sectors)
    )
}
