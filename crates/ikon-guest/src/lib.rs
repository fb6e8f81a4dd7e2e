//! Guest inspection without booting or mounting: partition table, filesystems, operating
//! system (Linux; Windows partly), cloud import rules, and the hygiene scan (`scan`).
//!
//! Everything reads through `&dyn ikon_disk::BlockDevice`, so every image format Ikon
//! opens is inspected the same way. Synchronous, bounded, never panics on hostile input:
//! structural problems are reported in `Inspection::problems` (the result is then partial).

pub mod ext4;
pub mod fsid;
pub mod linux;
pub mod ntfsfs;
pub mod osinfo;
pub mod partition;
pub mod regf;
pub mod rules;
pub mod scan;
pub mod vfs;
pub mod windows;

use ikon_disk::{BlockDevice, Result};
use serde::Serialize;

pub use fsid::{FsInfo, FsType};
pub use linux::LinuxInfo;
pub use partition::{PartitionTable, TableKind};
pub use rules::{Rule, RulesConfig, Verdict};

/// One filesystem found on the disk.
#[derive(Debug, Clone, Serialize)]
pub struct Filesystem {
    /// Partition number (0 = whole disk).
    pub partition: u32,
    /// Byte offset on the disk.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Identification.
    #[serde(flatten)]
    pub info: FsInfo,
}

/// Operating system found.
#[derive(Debug, Clone, Serialize)]
pub struct OsInfo {
    /// "linux" or "windows".
    pub os_type: String,
    /// Partition number holding the root.
    pub root_partition: u32,
    /// Root filesystem type.
    pub root_fs: FsType,
    /// libosinfo short id ("debian12", "win2k12r2"), as virt-inspector's `<osinfo>`; None
    /// where libguestfs would say "unknown" (see the `osinfo` module).
    pub osinfo: Option<String>,
    /// Linux details.
    pub linux: Option<LinuxInfo>,
    /// Windows details.
    pub windows: Option<windows::WindowsInfo>,
}

/// Everything `inspect` found.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Container format name (raw, qcow2, ...).
    pub format: String,
    /// Virtual disk size in bytes.
    pub virtual_size: u64,
    /// Partition table.
    pub partition_table: PartitionTable,
    /// Filesystems.
    pub filesystems: Vec<Filesystem>,
    /// Operating systems found (usually one).
    pub operating_systems: Vec<OsInfo>,
    /// Problems met (non-empty = partial result).
    pub problems: Vec<String>,
    /// Whether the result is partial (see `problems`).
    pub partial: bool,
}

/// Inspect a disk. `format` is the container format's name (informational).
pub fn inspect(dev: &dyn BlockDevice, format: &str) -> Result<Inspection> {
    let table = partition::read_table(dev)?;
    let mut problems = table.problems.clone();
    let mut regions: Vec<(u32, u64, u64)> = Vec::new();
    if table.kind == TableKind::None {
        regions.push((0, 0, dev.len()));
    } else {
        for p in &table.partitions {
            if partition::is_extended(p) {
                continue;
            }
            let size = p.size.min(dev.len().saturating_sub(p.offset));
            if size > 0 {
                regions.push((p.number, p.offset, size));
            }
        }
    }
    let mut fss = Vec::new();
    for (n, off, size) in regions {
        match fsid::identify(dev, off, size) {
            Ok(info) => fss.push(Filesystem {
                partition: n,
                offset: off,
                size,
                info,
            }),
            Err(e) => problems.push(format!("partition {n}: {e}")),
        }
    }
    let mut oses = Vec::new();
    for f in &fss {
        if matches!(f.info.fs_type, FsType::Ext2 | FsType::Ext3 | FsType::Ext4) {
            match ext4::Ext4::open(dev, f.offset, f.size) {
                Ok(fs) => {
                    if linux::is_linux_root(&fs) {
                        oses.push(OsInfo {
                            os_type: "linux".into(),
                            root_partition: f.partition,
                            root_fs: f.info.fs_type,
                            osinfo: None,
                            linux: Some(linux::detect(&fs)),
                            windows: None,
                        });
                    }
                }
                Err(e) => problems.push(format!("partition {}: {e}", f.partition)),
            }
        }
    }
    for f in fss.iter().filter(|f| f.info.fs_type == FsType::Ntfs) {
        // The ntfs crate is third-party code: contain any panic on hostile input.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let fs = ntfsfs::NtfsFs::open(dev, f.offset, f.size)?;
            Ok::<_, ikon_disk::Error>(windows::is_windows_root(&fs).then(|| windows::detect(&fs)))
        }));
        match r {
            Ok(Ok(Some((w, probs)))) => {
                problems.extend(probs);
                oses.push(OsInfo {
                    os_type: "windows".into(),
                    root_partition: f.partition,
                    root_fs: FsType::Ntfs,
                    osinfo: None,
                    linux: None,
                    windows: Some(w),
                });
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => problems.push(format!("partition {}: {e}", f.partition)),
            Err(_) => problems.push(format!(
                "partition {}: NTFS reader failed on corrupt metadata",
                f.partition
            )),
        }
    }
    // Roots we cannot read (xfs, btrfs, LVM): report the type so rules can explain.
    if oses.is_empty() {
        if let Some(f) = fss
            .iter()
            .find(|f| matches!(f.info.fs_type, FsType::Xfs | FsType::Btrfs | FsType::Lvm2))
        {
            oses.push(OsInfo {
                os_type: "linux".into(),
                root_partition: f.partition,
                root_fs: f.info.fs_type,
                osinfo: None,
                linux: None,
                windows: None,
            });
            problems.push(format!(
                "partition {} holds {}, whose contents Ikon does not read; the OS is assumed to be Linux",
                f.partition,
                f.info.fs_type.name()
            ));
        }
    }
    for os in &mut oses {
        os.osinfo = osinfo::short_id(os);
    }
    let partial = !problems.is_empty();
    Ok(Inspection {
        format: format.to_string(),
        virtual_size: dev.len(),
        partition_table: table,
        filesystems: fss,
        operating_systems: oses,
        problems,
        partial,
    })
}
