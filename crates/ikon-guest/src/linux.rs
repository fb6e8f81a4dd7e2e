//! Linux detection over a `GuestFs`: distribution (os-release and legacy release files),
//! architecture (ELF header of the shell/init), kernels, virtio drivers, fstab root,
//! hostname, cloud-init, network interfaces and IPv6.

use crate::vfs::GuestFs;
use ikon_disk::bytes::{be16_or_zero, le16_or_zero};
use serde::Serialize;

/// Bound on directory listings done by the detectors.
const LIST_MAX: usize = 10_000;

/// What was found about a Linux guest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinuxInfo {
    /// Distribution id (os-release `ID`, or derived): centos, rhel, ubuntu, debian, ...
    pub distro: String,
    /// Human name.
    pub name: String,
    /// Version ("7", "22.04", "12").
    pub version: String,
    /// Architecture ("x86_64", "i386", "aarch64"...).
    pub arch: Option<String>,
    /// Word size in bits (32 or 64).
    pub bits: Option<u32>,
    /// Kernel versions found in /boot and /lib/modules.
    pub kernels: Vec<String>,
    /// virtio_blk found (module or built in).
    pub virtio_blk: bool,
    /// virtio_net found (module or built in).
    pub virtio_net: bool,
    /// Root device as written in /etc/fstab (UUID=..., LABEL=..., /dev/...).
    pub fstab_root: Option<String>,
    /// Root filesystem type as written in /etc/fstab.
    pub fstab_root_type: Option<String>,
    /// Hostname.
    pub hostname: Option<String>,
    /// cloud-init installed.
    pub cloud_init: bool,
    /// Network interfaces configured.
    pub nics: Vec<String>,
    /// IPv6 enabled by the configuration.
    pub ipv6: bool,
    /// Red Hat Enterprise Linux (imports need BYOL).
    pub byol_required: bool,
}

fn kv(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').trim_matches('\'').to_string())
    })
}

fn first_number(s: &str) -> String {
    s.split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("")
        .to_string()
}

/// Whether the filesystem looks like a Linux root.
pub fn is_linux_root<F: GuestFs>(fs: &F) -> bool {
    fs.exists("/etc") && (fs.exists("/bin") || fs.exists("/usr/bin")) && !fs.exists("/Windows")
}

/// Detect the distribution and the rest.
pub fn detect<F: GuestFs>(fs: &F) -> LinuxInfo {
    let mut i = LinuxInfo::default();
    distro(fs, &mut i);
    elf_arch(fs, &mut i);
    kernels_and_virtio(fs, &mut i);
    fstab(fs, &mut i);
    i.hostname = fs
        .read_text("/etc/hostname")
        .and_then(|h| h.lines().next().map(|l| l.trim().to_string()))
        .or_else(|| fs.read_text("/etc/HOSTNAME").map(|h| h.trim().to_string()))
        .or_else(|| {
            fs.read_text("/etc/sysconfig/network")
                .and_then(|t| kv(&t, "HOSTNAME"))
        })
        .filter(|h| !h.is_empty());
    i.cloud_init = ["/usr/bin/cloud-init", "/etc/cloud/cloud.cfg"]
        .iter()
        .any(|p| fs.exists(p))
        || fs
            .read_text("/var/lib/dpkg/status")
            .is_some_and(|s| s.contains("Package: cloud-init\nStatus: install ok installed"));
    network(fs, &mut i);
    i
}

fn distro<F: GuestFs>(fs: &F, i: &mut LinuxInfo) {
    if let Some(t) = fs
        .read_text("/etc/os-release")
        .or_else(|| fs.read_text("/usr/lib/os-release"))
    {
        i.distro = kv(&t, "ID").unwrap_or_default().to_lowercase();
        i.name = kv(&t, "NAME").unwrap_or_default();
        i.version = kv(&t, "VERSION_ID").unwrap_or_default();
        let variant = kv(&t, "VARIANT_ID").unwrap_or_default();
        if i.distro == "fedora" && variant == "coreos" {
            i.distro = "fcos".into();
        }
        if i.distro == "sles" || i.distro == "sled" {
            i.distro = "sles".into();
        }
        if i.distro.starts_with("opensuse") {
            i.distro = "opensuse".into();
        }
    } else if let Some(t) = fs.read_text("/etc/centos-release") {
        i.distro = "centos".into();
        i.name = t.trim().to_string();
        i.version = first_number(&t);
    } else if let Some(t) = fs.read_text("/etc/redhat-release") {
        let l = t.to_lowercase();
        i.distro = if l.contains("centos") {
            "centos"
        } else if l.contains("fedora") {
            "fedora"
        } else {
            "rhel"
        }
        .into();
        i.name = t.trim().to_string();
        i.version = first_number(&t);
    } else if let Some(t) = fs.read_text("/etc/SuSE-release") {
        let l = t.to_lowercase();
        i.distro = if l.contains("opensuse") {
            "opensuse"
        } else {
            "sles"
        }
        .into();
        i.name = t.lines().next().unwrap_or("").trim().to_string();
        let v = kv(&t, "VERSION").unwrap_or_default();
        i.version = match kv(&t, "PATCHLEVEL") {
            Some(p) if p != "0" => format!("{v}.{p}"),
            _ => v,
        };
    } else if let Some(t) = fs.read_text("/etc/lsb-release") {
        i.distro = kv(&t, "DISTRIB_ID").unwrap_or_default().to_lowercase();
        i.name = kv(&t, "DISTRIB_DESCRIPTION").unwrap_or_default();
        i.version = kv(&t, "DISTRIB_RELEASE").unwrap_or_default();
    } else if let Some(t) = fs.read_text("/etc/debian_version") {
        i.distro = "debian".into();
        i.name = "Debian GNU/Linux".into();
        i.version = t.trim().split('.').next().unwrap_or("").to_string();
    } else {
        i.distro = "unknown".into();
    }
    i.byol_required = i.distro == "rhel";
}

fn elf_arch<F: GuestFs>(fs: &F, i: &mut LinuxInfo) {
    for p in [
        "/bin/sh",
        "/sbin/init",
        "/bin/bash",
        "/bin/ls",
        "/usr/bin/ls",
    ] {
        let Ok(Some(b)) = fs.read_file(p, 64 << 20) else {
            continue;
        };
        if b.len() < 20 || &b[0..4] != b"\x7fELF" {
            continue;
        }
        let bits = match b[4] {
            1 => 32,
            2 => 64,
            _ => continue,
        };
        // e_ident[EI_DATA] (byte 5): 2 = big-endian; e_machine at 18 (length checked above).
        let m = if b[5] == 2 {
            be16_or_zero(&b, 18)
        } else {
            le16_or_zero(&b, 18)
        };
        // e_machine values from the System V ABI / elf.h.
        let arch = match m {
            3 => "i386",
            62 => "x86_64",
            40 => "arm",
            183 => "aarch64",
            243 => {
                if bits == 64 {
                    "riscv64"
                } else {
                    "riscv32"
                }
            }
            21 => "ppc64",
            22 => "s390x",
            _ => "unknown",
        };
        i.arch = Some(arch.into());
        i.bits = Some(bits);
        return;
    }
}

fn kernels_and_virtio<F: GuestFs>(fs: &F, i: &mut LinuxInfo) {
    let mut ks: Vec<String> = Vec::new();
    for n in fs.list_dir("/boot", LIST_MAX).unwrap_or_default() {
        if let Some(v) = n
            .strip_prefix("vmlinuz-")
            .or_else(|| n.strip_prefix("vmlinux-"))
        {
            ks.push(v.to_string());
        }
        if let Some(v) = n.strip_prefix("config-") {
            if let Some(t) = fs.read_text(&format!("/boot/{n}")) {
                i.virtio_blk |= t.lines().any(|l| l.trim() == "CONFIG_VIRTIO_BLK=y");
                i.virtio_net |= t.lines().any(|l| l.trim() == "CONFIG_VIRTIO_NET=y");
            }
            let _ = v;
        }
    }
    for base in ["/lib/modules", "/usr/lib/modules"] {
        for k in fs.list_dir(base, LIST_MAX).unwrap_or_default() {
            if !ks.contains(&k) {
                ks.push(k.clone());
            }
            for (dir, name, flag) in [("block", "virtio_blk", 0u8), ("net", "virtio_net", 1u8)] {
                for ext in ["ko", "ko.xz", "ko.zst", "ko.gz"] {
                    if fs.exists(&format!("{base}/{k}/kernel/drivers/{dir}/{name}.{ext}")) {
                        if flag == 0 {
                            i.virtio_blk = true;
                        } else {
                            i.virtio_net = true;
                        }
                    }
                }
            }
            if let Some(t) = fs.read_text(&format!("{base}/{k}/modules.builtin")) {
                i.virtio_blk |= t.contains("virtio_blk.ko");
                i.virtio_net |= t.contains("virtio_net.ko");
            }
        }
    }
    ks.sort();
    ks.dedup();
    i.kernels = ks;
}

fn fstab<F: GuestFs>(fs: &F, i: &mut LinuxInfo) {
    let Some(t) = fs.read_text("/etc/fstab") else {
        return;
    };
    for l in t.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 3 && !f[0].starts_with('#') && f[1] == "/" {
            i.fstab_root = Some(f[0].to_string());
            i.fstab_root_type = Some(f[2].to_string());
        }
    }
}

fn network<F: GuestFs>(fs: &F, i: &mut LinuxInfo) {
    let mut nics: Vec<String> = Vec::new();
    let add = |n: &str, nics: &mut Vec<String>| {
        if n != "lo" && !n.is_empty() && !nics.iter().any(|x| x == n) {
            nics.push(n.to_string());
        }
    };
    // RHEL family / SUSE
    for dir in ["/etc/sysconfig/network-scripts", "/etc/sysconfig/network"] {
        for n in fs.list_dir(dir, LIST_MAX).unwrap_or_default() {
            if let Some(dev) = n.strip_prefix("ifcfg-") {
                add(dev, &mut nics);
                if let Some(t) = fs.read_text(&format!("{dir}/{n}")) {
                    if kv(&t, "IPV6INIT").is_some_and(|v| v.eq_ignore_ascii_case("yes")) {
                        i.ipv6 = true;
                    }
                }
            }
        }
    }
    if let Some(t) = fs.read_text("/etc/sysconfig/network") {
        if kv(&t, "NETWORKING_IPV6").is_some_and(|v| v.eq_ignore_ascii_case("yes")) {
            i.ipv6 = true;
        }
    }
    // Debian ifupdown
    if let Some(t) = fs.read_text("/etc/network/interfaces") {
        for l in t.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 3 && f[0] == "iface" {
                add(f[1], &mut nics);
                if f[2] == "inet6" {
                    i.ipv6 = true;
                }
            }
        }
    }
    // netplan
    for n in fs.list_dir("/etc/netplan", LIST_MAX).unwrap_or_default() {
        if !(n.ends_with(".yaml") || n.ends_with(".yml")) {
            continue;
        }
        let Some(t) = fs.read_text(&format!("/etc/netplan/{n}")) else {
            continue;
        };
        let mut in_eth = false;
        let mut indent = 0usize;
        for l in t.lines() {
            let ind = l.len() - l.trim_start().len();
            let s = l.trim();
            if s.starts_with('#') || s.is_empty() {
                continue;
            }
            if s == "ethernets:" {
                in_eth = true;
                indent = ind;
                continue;
            }
            if in_eth && ind <= indent {
                in_eth = false;
            }
            if in_eth {
                if let Some(name) = s.strip_suffix(':') {
                    if ind > indent
                        && !name.contains(' ')
                        && !["dhcp4", "dhcp6", "match", "addresses", "nameservers"].contains(&name)
                    {
                        add(name, &mut nics);
                    }
                }
            }
            if s.starts_with("dhcp6: true")
                || s.starts_with("dhcp6: yes")
                || (s.starts_with("- ") && s.contains("::"))
            {
                i.ipv6 = true;
            }
        }
    }
    // NetworkManager keyfiles
    for n in fs
        .list_dir("/etc/NetworkManager/system-connections", LIST_MAX)
        .unwrap_or_default()
    {
        let Some(t) = fs.read_text(&format!("/etc/NetworkManager/system-connections/{n}")) else {
            continue;
        };
        if let Some(ifn) = kv(&t, "interface-name") {
            add(&ifn, &mut nics);
        }
        let mut sect6 = false;
        for l in t.lines() {
            let l = l.trim();
            if l.starts_with('[') {
                sect6 = l == "[ipv6]";
            }
            if sect6
                && l.starts_with("method=")
                && !l.ends_with("ignore")
                && !l.ends_with("disabled")
            {
                i.ipv6 = true;
            }
        }
    }
    // sysctl may disable IPv6 globally
    if let Some(t) = fs.read_text("/etc/sysctl.conf") {
        if t.lines()
            .any(|l| l.replace(' ', "") == "net.ipv6.conf.all.disable_ipv6=1")
        {
            i.ipv6 = false;
        }
    }
    i.nics = nics;
}
