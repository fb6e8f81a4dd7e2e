//! qcow2 header, header extensions and their validation (QEMU docs/interop/qcow2.txt).
//! Every size and offset is checked against the file before anything is allocated.

use crate::bytes::{be32_or_zero, be64_or_zero};
use crate::error::{CheckedOr, Error, Result};

/// Magic `QFI\xfb` (qcow2.txt, header byte 0).
pub const MAGIC: u32 = 0x5146_49fb;
/// Smallest and largest cluster_bits qemu accepts (qcow2.txt: "cluster_bits … must not be
/// less than 9 (i.e. 512 byte clusters)"; QEMU's MAX_CLUSTER_BITS = 21).
pub const MIN_CLUSTER_BITS: u32 = 9;
/// See [`MIN_CLUSTER_BITS`].
pub const MAX_CLUSTER_BITS: u32 = 21;
/// Largest L1 table QEMU opens (QCOW_MAX_L1_SIZE, 32 MiB).
pub const MAX_L1_BYTES: u64 = 32 << 20;
/// Largest refcount table QEMU opens (QCOW_MAX_REFTABLE_SIZE, 8 MiB).
pub const MAX_REFTABLE_BYTES: u64 = 8 << 20;
/// Largest number of internal snapshots (QCOW_MAX_SNAPSHOTS).
pub const MAX_SNAPSHOTS: u32 = 65536;
/// Largest backing file name (qcow2.txt: "Must not be longer than 1023 bytes").
pub const MAX_BACKING_NAME: u32 = 1023;
/// Incompatible feature bits (qcow2.txt, header bytes 72–79).
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
/// Corrupt bit: metadata may be inconsistent; read-only use is allowed.
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
/// External data file: guest data lives in another file.
pub const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Compression type field (byte 104) is valid and non-zlib.
pub const INCOMPAT_COMPRESSION: u64 = 1 << 3;
/// Extended L2 entries (128 bits, 32 subclusters).
pub const INCOMPAT_EXTL2: u64 = 1 << 4;
/// Every incompatible bit this implementation understands.
pub const INCOMPAT_KNOWN: u64 =
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
/// Autoclear bit 1: the external data file is raw (guest offset == data file offset).
pub const AUTOCLEAR_DATA_FILE_RAW: u64 = 1 << 1;
/// Header extension types (qcow2.txt "Header extensions").
pub const EXT_END: u32 = 0;
/// Backing file format name.
pub const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
/// Feature name table.
pub const EXT_FEATURE_TABLE: u32 = 0x6803_f857;
/// Full disk encryption header pointer.
pub const EXT_CRYPTO: u32 = 0x0537_be77;
/// External data file name.
pub const EXT_DATA_FILE: u32 = 0x4441_5441;
/// Length of a version 2 header.
pub const V2_HEADER_LEN: u32 = 72;
/// Length of the version 3 header Ikon writes (with the compression type byte, padded to 8).
pub const V3_HEADER_LEN: u32 = 112;

/// Compression algorithm of compressed clusters (header byte 104).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Raw deflate (the default).
    Zlib,
    /// Zstandard.
    Zstd,
}

/// A parsed and validated header.
#[derive(Debug, Clone)]
pub struct Header {
    /// 2 or 3.
    pub version: u32,
    /// log2 of the cluster size.
    pub cluster_bits: u32,
    /// Virtual size in bytes.
    pub size: u64,
    /// Entries in the active L1 table.
    pub l1_size: u32,
    /// Offset of the active L1 table.
    pub l1_table_offset: u64,
    /// Offset of the refcount table.
    pub refcount_table_offset: u64,
    /// Clusters of the refcount table.
    pub refcount_table_clusters: u32,
    /// Number of internal snapshots.
    pub nb_snapshots: u32,
    /// Offset of the snapshot table.
    pub snapshots_offset: u64,
    /// Incompatible feature bits.
    pub incompatible: u64,
    /// Autoclear feature bits.
    pub autoclear: u64,
    /// log2 of the refcount width in bits.
    pub refcount_order: u32,
    /// Compression type.
    pub compression: CompressionType,
    /// Backing file name, if any.
    pub backing_file: Option<String>,
    /// Backing file format from the extension, if any.
    pub backing_format: Option<String>,
    /// External data file name, if any.
    pub data_file: Option<String>,
}

impl Header {
    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }
    /// Bytes per L2 entry (16 with extended L2).
    pub fn l2_entry_size(&self) -> u64 {
        if self.extended_l2() {
            16
        } else {
            8
        }
    }
    /// Entries per L2 table.
    pub fn l2_entries(&self) -> u64 {
        self.cluster_size() / self.l2_entry_size()
    }
    /// True with extended L2 entries.
    pub fn extended_l2(&self) -> bool {
        self.incompatible & INCOMPAT_EXTL2 != 0
    }

    /// Parse `buf` (the first cluster of the file, or as much of it as exists) of a file of
    /// `file_size` bytes.
    pub fn parse(buf: &[u8], file_size: u64) -> Result<Header> {
        if buf.len() < V2_HEADER_LEN as usize {
            return Err(Error::corrupt(format!(
                "qcow2 header is truncated ({} bytes)",
                buf.len()
            )));
        }
        if be32_or_zero(buf, 0) != MAGIC {
            return Err(Error::corrupt("not a qcow2 image (bad magic)"));
        }
        let version = be32_or_zero(buf, 4);
        if version != 2 && version != 3 {
            return Err(Error::unsupported(format!(
                "qcow2 version {version} (only 2 and 3 exist)"
            )));
        }
        let backing_file_offset = be64_or_zero(buf, 8);
        let backing_file_size = be32_or_zero(buf, 16);
        let cluster_bits = be32_or_zero(buf, 20);
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
            return Err(Error::corrupt(format!(
                "qcow2 cluster_bits {cluster_bits} at byte 20 is outside {MIN_CLUSTER_BITS}..={MAX_CLUSTER_BITS}"
            )));
        }
        let cluster = 1u64 << cluster_bits;
        let size = be64_or_zero(buf, 24);
        let crypt_method = be32_or_zero(buf, 32);
        if crypt_method != 0 {
            return Err(Error::unsupported(format!(
                "encrypted qcow2 images (crypt_method {crypt_method}) are not supported"
            )));
        }
        let mut h = Header {
            version,
            cluster_bits,
            size,
            l1_size: be32_or_zero(buf, 36),
            l1_table_offset: be64_or_zero(buf, 40),
            refcount_table_offset: be64_or_zero(buf, 48),
            refcount_table_clusters: be32_or_zero(buf, 56),
            nb_snapshots: be32_or_zero(buf, 60),
            snapshots_offset: be64_or_zero(buf, 64),
            incompatible: 0,
            autoclear: 0,
            refcount_order: 4,
            compression: CompressionType::Zlib,
            backing_file: None,
            backing_format: None,
            data_file: None,
        };
        let mut header_length = V2_HEADER_LEN;
        if version == 3 {
            if buf.len() < 104 {
                return Err(Error::corrupt("qcow2 v3 header is truncated"));
            }
            h.incompatible = be64_or_zero(buf, 72);
            h.autoclear = be64_or_zero(buf, 88);
            h.refcount_order = be32_or_zero(buf, 96);
            header_length = be32_or_zero(buf, 100);
            if header_length < 104
                || u64::from(header_length) > cluster
                || header_length as usize > buf.len()
            {
                return Err(Error::corrupt(format!(
                    "qcow2 header_length {header_length} at byte 100 is invalid"
                )));
            }
            if header_length > 104 {
                h.compression = match buf.get(104) {
                    Some(0) => CompressionType::Zlib,
                    Some(1) => CompressionType::Zstd,
                    Some(t) => {
                        return Err(Error::unsupported(format!(
                            "qcow2 compression type {t} at byte 104"
                        )))
                    }
                    None => CompressionType::Zlib,
                };
            }
            let unknown = h.incompatible & !INCOMPAT_KNOWN;
            if unknown != 0 {
                return Err(Error::unsupported(format!(
                    "qcow2 incompatible feature bits 0x{unknown:x} are not supported"
                )));
            }
            if (h.incompatible & INCOMPAT_COMPRESSION != 0)
                != (h.compression != CompressionType::Zlib)
            {
                return Err(Error::corrupt(
                    "qcow2 compression type bit and compression type field disagree",
                ));
            }
            if h.refcount_order > 6 {
                return Err(Error::corrupt(format!(
                    "qcow2 refcount_order {} at byte 96 exceeds 6",
                    h.refcount_order
                )));
            }
            if h.extended_l2() && cluster_bits < 14 {
                return Err(Error::corrupt(
                    "qcow2 extended L2 needs clusters of at least 16 KiB",
                ));
            }
        }
        h.validate_tables(cluster, file_size)?;
        // Backing file name.
        if backing_file_offset != 0 {
            if backing_file_size == 0 || backing_file_size > MAX_BACKING_NAME {
                return Err(Error::corrupt(format!(
                    "qcow2 backing file name length {backing_file_size} is invalid"
                )));
            }
            let end = backing_file_offset
                .add_or(u64::from(backing_file_size), "qcow2 backing file name")?;
            let name = usize::try_from(backing_file_offset)
                .ok()
                .zip(usize::try_from(end).ok())
                .and_then(|(s, e)| buf.get(s..e))
                .ok_or_else(|| {
                    Error::corrupt(format!(
                        "qcow2 backing file name at {backing_file_offset} ({backing_file_size} bytes) lies outside the first cluster"
                    ))
                })?;
            h.backing_file = Some(String::from_utf8_lossy(name).into_owned());
        }
        h.parse_extensions(buf, header_length, backing_file_offset)?;
        if h.incompatible & INCOMPAT_DATA_FILE != 0 && h.data_file.is_none() {
            return Err(Error::corrupt(
                "qcow2 image needs an external data file but names none",
            ));
        }
        Ok(h)
    }

    fn validate_tables(&self, cluster: u64, file_size: u64) -> Result<()> {
        // The L1 table must cover the virtual size.
        let per_l2 = cluster
            / if self.incompatible & INCOMPAT_EXTL2 != 0 {
                16
            } else {
                8
            };
        let covered = cluster.saturating_mul(per_l2);
        let needed = self.size.div_ceil(covered);
        if u64::from(self.l1_size) < needed {
            return Err(Error::corrupt(format!(
                "qcow2 L1 table has {} entries but a virtual size of {} needs {needed}",
                self.l1_size, self.size
            )));
        }
        let l1_bytes = u64::from(self.l1_size) * 8;
        if l1_bytes > MAX_L1_BYTES {
            return Err(Error::limit(format!(
                "qcow2 L1 table of {l1_bytes} bytes exceeds {MAX_L1_BYTES}"
            )));
        }
        if self.l1_size > 0 {
            check_table(
                self.l1_table_offset,
                l1_bytes,
                cluster,
                file_size,
                "L1 table",
            )?;
        }
        let rt_bytes = u64::from(self.refcount_table_clusters) * cluster;
        if rt_bytes > MAX_REFTABLE_BYTES {
            return Err(Error::limit(format!(
                "qcow2 refcount table of {rt_bytes} bytes exceeds {MAX_REFTABLE_BYTES}"
            )));
        }
        if rt_bytes == 0 {
            return Err(Error::corrupt("qcow2 image has no refcount table"));
        }
        check_table(
            self.refcount_table_offset,
            rt_bytes,
            cluster,
            file_size,
            "refcount table",
        )?;
        if self.nb_snapshots > MAX_SNAPSHOTS {
            return Err(Error::limit(format!(
                "qcow2 image claims {} snapshots (at most {MAX_SNAPSHOTS})",
                self.nb_snapshots
            )));
        }
        if self.nb_snapshots > 0 {
            check_table(
                self.snapshots_offset,
                40,
                cluster,
                file_size,
                "snapshot table",
            )?;
        }
        Ok(())
    }

    fn parse_extensions(
        &mut self,
        buf: &[u8],
        header_length: u32,
        backing_offset: u64,
    ) -> Result<()> {
        let mut pos = header_length as usize;
        let limit = if backing_offset != 0 {
            usize::try_from(backing_offset)
                .unwrap_or(buf.len())
                .min(buf.len())
        } else {
            buf.len()
        };
        for _ in 0..1024 {
            if pos + 8 > limit {
                return Ok(());
            }
            let kind = be32_or_zero(buf, pos);
            let len = be32_or_zero(buf, pos + 4) as usize;
            let data_start = pos + 8;
            let data = buf.get(data_start..data_start.saturating_add(len)).ok_or_else(|| {
                Error::corrupt(format!("qcow2 header extension 0x{kind:08x} at byte {pos} runs past the first cluster"))
            })?;
            let text = || {
                String::from_utf8_lossy(data)
                    .trim_end_matches('\0')
                    .to_string()
            };
            match kind {
                EXT_END => return Ok(()),
                EXT_BACKING_FORMAT => self.backing_format = Some(text()),
                EXT_DATA_FILE => self.data_file = Some(text()),
                EXT_CRYPTO => {
                    return Err(Error::unsupported(
                        "encrypted qcow2 images are not supported",
                    ))
                }
                _ => {}
            }
            pos = data_start + len.div_ceil(8) * 8;
        }
        Err(Error::corrupt("qcow2 header has more than 1024 extensions"))
    }
}

/// Check that a metadata table `[off, off+len)` is cluster aligned, after the header
/// cluster, and inside the file.
pub fn check_table(off: u64, len: u64, cluster: u64, file_size: u64, what: &str) -> Result<()> {
    if !off.is_multiple_of(cluster) {
        return Err(Error::corrupt(format!(
            "qcow2 {what} offset 0x{off:x} is not cluster aligned"
        )));
    }
    if off < cluster {
        return Err(Error::corrupt(format!(
            "qcow2 {what} at offset 0x{off:x} overlaps the header"
        )));
    }
    let end = off.add_or(len, what)?;
    if end > file_size {
        return Err(Error::corrupt(format!(
            "qcow2 {what} at 0x{off:x} ({len} bytes) extends past the end of the file ({file_size} bytes)"
        )));
    }
    Ok(())
}

/// Serialize a header for a new image (no backing file, no snapshots).
#[allow(clippy::too_many_arguments)]
pub fn encode(
    version: u32,
    cluster_bits: u32,
    size: u64,
    l1_size: u32,
    l1_off: u64,
    rt_off: u64,
    rt_clusters: u32,
    incompatible: u64,
    compression: CompressionType,
) -> Vec<u8> {
    let len = if version == 3 {
        V3_HEADER_LEN
    } else {
        V2_HEADER_LEN
    } as usize;
    let mut b = vec![0u8; len + 8];
    let put32 =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    let put64 =
        |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_be_bytes());
    put32(&mut b, 0, MAGIC);
    put32(&mut b, 4, version);
    put32(&mut b, 20, cluster_bits);
    put64(&mut b, 24, size);
    put32(&mut b, 36, l1_size);
    put64(&mut b, 40, l1_off);
    put64(&mut b, 48, rt_off);
    put32(&mut b, 56, rt_clusters);
    if version == 3 {
        put64(&mut b, 72, incompatible);
        put32(&mut b, 96, 4);
        put32(&mut b, 100, V3_HEADER_LEN);
        b[104] = match compression {
            CompressionType::Zlib => 0,
            CompressionType::Zstd => 1,
        };
    }
    // The 8 trailing zero bytes are the end-of-extensions marker.
    b
}
