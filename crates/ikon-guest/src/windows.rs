//! Windows detection over an NTFS `GuestFs`: SOFTWARE hive CurrentVersion values, PE header
//! of ntoskrnl.exe for the architecture, virtio drivers (files and service keys).

use crate::regf::{Hive, Value};
use crate::vfs::GuestFs;
use ikon_disk::bytes::{le16, le32};
use serde::Serialize;

/// Largest hive file read.
const HIVE_LIMIT: u64 = 200 << 20;

/// What was found about a Windows guest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WindowsInfo {
    /// ProductName.
    pub product_name: String,
    /// NT version ("6.3", "10.0"): CurrentMajorVersionNumber.CurrentMinorVersionNumber when
    /// both are there (Windows 10 and later, whose CurrentVersion still says "6.3"), else
    /// CurrentVersion; the same choice as libguestfs.
    pub version: String,
    /// CurrentBuildNumber / CurrentBuild.
    pub build: String,
    /// EditionID.
    pub edition: String,
    /// InstallationType ("Server", "Client").
    pub installation_type: String,
    /// Server edition.
    pub server: bool,
    /// Architecture ("x86_64", "i386", "aarch64").
    pub arch: Option<String>,
    /// Word size.
    pub bits: Option<u32>,
    /// System root (C:\Windows).
    pub system_root: String,
    /// viostor or vioscsi driver file + service key present.
    pub virtio_storage: bool,
    /// netkvm driver file + service key present.
    pub virtio_net: bool,
    /// Computer name.
    pub hostname: Option<String>,
}

/// Whether the filesystem looks like a Windows system volume.
pub fn is_windows_root<F: GuestFs>(fs: &F) -> bool {
    fs.exists("/Windows/System32/config/SOFTWARE")
}

fn sval(h: &Hive, key: &str, name: &str) -> Option<String> {
    let k = h.open_key(key).ok()??;
    h.value(k, name).ok()??.as_string()
}

/// Detect Windows details.
pub fn detect<F: GuestFs>(fs: &F) -> (WindowsInfo, Vec<String>) {
    let mut w = WindowsInfo::default();
    let mut problems = Vec::new();
    match fs
        .read_file("/Windows/System32/config/SOFTWARE", HIVE_LIMIT)
        .map(|d| d.map(Hive::new))
    {
        Ok(Some(Ok(h))) => {
            let cv = "Microsoft\\Windows NT\\CurrentVersion";
            w.product_name = sval(&h, cv, "ProductName").unwrap_or_default();
            let dword = |name: &str| match h.open_key(cv).ok().flatten() {
                Some(k) => match h.value(k, name) {
                    Ok(Some(Value::Dword(d))) => Some(d),
                    _ => None,
                },
                None => None,
            };
            w.version = match (
                dword("CurrentMajorVersionNumber"),
                dword("CurrentMinorVersionNumber"),
            ) {
                (Some(major), Some(minor)) => format!("{major}.{minor}"),
                _ => sval(&h, cv, "CurrentVersion").unwrap_or_default(),
            };
            w.build = sval(&h, cv, "CurrentBuildNumber")
                .or_else(|| sval(&h, cv, "CurrentBuild"))
                .unwrap_or_default();
            w.edition = sval(&h, cv, "EditionID").unwrap_or_default();
            w.installation_type = sval(&h, cv, "InstallationType").unwrap_or_default();
            w.system_root = sval(&h, cv, "SystemRoot").unwrap_or_else(|| "C:\\Windows".into());
            w.server = w.installation_type.eq_ignore_ascii_case("server")
                || w.product_name.contains("Server")
                || w.edition.starts_with("Server");
        }
        Ok(Some(Err(e))) => problems.push(format!("SOFTWARE hive: {e}")),
        Ok(None) => problems.push("SOFTWARE hive not found".into()),
        Err(e) => problems.push(format!("SOFTWARE hive: {e}")),
    }
    let system = fs
        .read_file("/Windows/System32/config/SYSTEM", HIVE_LIMIT)
        .ok()
        .flatten()
        .and_then(|d| Hive::new(d).ok());
    if let Ok(Some(pe)) = fs.read_file("/Windows/System32/ntoskrnl.exe", 64 << 20) {
        pe_arch(&pe, &mut w);
    }
    if w.arch.is_none() {
        if let Some(h) = &system {
            if let Some(a) = sval(
                h,
                "ControlSet001\\Control\\Session Manager\\Environment",
                "PROCESSOR_ARCHITECTURE",
            ) {
                let (arch, bits) = match a.to_ascii_uppercase().as_str() {
                    "AMD64" => ("x86_64", 64),
                    "X86" => ("i386", 32),
                    "ARM64" => ("aarch64", 64),
                    _ => ("unknown", 0),
                };
                w.arch = Some(arch.into());
                w.bits = (bits > 0).then_some(bits);
            }
        }
    }
    let svc = |name: &str| {
        system.as_ref().is_some_and(|h| {
            matches!(
                h.open_key(&format!("ControlSet001\\Services\\{name}")),
                Ok(Some(_))
            )
        })
    };
    let file = |name: &str| fs.exists(&format!("/Windows/System32/drivers/{name}.sys"));
    w.virtio_storage = ["viostor", "vioscsi"].iter().any(|d| file(d) && svc(d));
    w.virtio_net = file("netkvm") && svc("netkvm");
    w.hostname = system.as_ref().and_then(|h| {
        sval(
            h,
            "ControlSet001\\Control\\ComputerName\\ComputerName",
            "ComputerName",
        )
    });
    (w, problems)
}

/// Architecture from a PE image: e_lfanew at 0x3C, "PE\0\0", IMAGE_FILE_HEADER.Machine
/// (PE/COFF spec: 0x8664 AMD64, 0x14c i386, 0xAA64 ARM64).
fn pe_arch(pe: &[u8], w: &mut WindowsInfo) {
    let Some(l) = le32(pe, 0x3C) else { return };
    let off = usize::try_from(l).unwrap_or(usize::MAX);
    if pe.get(0..2) != Some(b"MZ") || pe.get(off..off.saturating_add(4)) != Some(b"PE\0\0") {
        return;
    }
    let Some(machine) = off.checked_add(4).and_then(|at| le16(pe, at)) else {
        return;
    };
    let (arch, bits) = match machine {
        0x8664 => ("x86_64", 64),
        0x014C => ("i386", 32),
        0xAA64 => ("aarch64", 64),
        _ => return,
    };
    w.arch = Some(arch.into());
    w.bits = Some(bits);
}
