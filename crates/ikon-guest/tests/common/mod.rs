//! Helpers shared by this crate's integration tests.

use ikon_guest::rules::RulesConfig;
use ikon_guest::{FsType, TableKind};

/// Import rules shaped like the Tencent preset's (the presets themselves are the service's
/// policy documents; this crate only evaluates what it is given). `converted`: formats
/// outside the list are converted rather than refused.
pub fn rules_like(name: &str, converted: bool) -> RulesConfig {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
    RulesConfig {
        name: name.into(),
        formats: s(&["raw", "vhd", "qcow2", "vmdk"]),
        formats_converted: converted,
        linux_distros: s(&[
            "centos", "rhel", "ubuntu", "debian", "coreos", "fcos", "opensuse", "sles",
        ]),
        linux_bits: vec![32, 64],
        windows_versions: s(&["2008", "2008 R2", "2012", "2012 R2"]),
        windows_bits: vec![64],
        partition_tables: vec![TableKind::Mbr],
        linux_root_fs: vec![FsType::Ext3, FsType::Ext4],
        windows_root_fs: vec![FsType::Ntfs],
        max_virtual_size: 50 << 30,
        require_virtio: true,
        byol_distros: s(&["rhel"]),
        max_nics: 1,
        warn_ipv6: true,
    }
}
