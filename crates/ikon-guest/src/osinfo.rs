//! The libosinfo short id of a guest OS (`win2k12r2`, `win10`, `debian12`, `ubuntu22.04`,
//! `centos7.0`, `rhel9.2`, `sle15sp5`, `alpinelinux3.19`, ...), the value libguestfs'
//! virt-inspector prints in its `<osinfo>` element and that `virt-install --os-variant` and
//! hypervisor tooling take. Computed here only, from what `linux` and `windows` detected.
//!
//! Source of the rules: libguestfs `lib/inspect-osinfo.c` (`inspect_get_osinfo`, as of
//! libguestfs 1.56, commit f10f2013b7c2), fed by the daemon's inspection (`daemon/
//! inspect_fs_unix.ml`, `inspect_fs_windows.ml`, `inspect_utils.ml`). Restated:
//!
//! * The version is read as libguestfs reads it: the first `N.M` anywhere in the string gives
//!   major N, minor M; otherwise the first number gives major N, minor 0.
//! * Linux, by libguestfs' distro name (os-release `ID` mapped: `alpine` → `alpinelinux`,
//!   `arch` → `archlinux`, `void` → `voidlinux`, `kali` → `kalilinux`, `pld` → `pldlinux`;
//!   Ikon's `fcos` is libguestfs' `fedora`):
//!   - centos: 8 and later `centos8`; 7 → `centos7.0`; 6 → `centos6.M`; older: generic.
//!   - rocky, circle: 8 and later `rocky9`; debian: 4 and later `debian12`.
//!   - fedora, mageia: `fedora39` (major only).
//!   - sles: `sles12`/`sles12sp4` below 15; `sle15`/`sle15sp5` from 15 on (libosinfo renamed
//!     SUSE 15+; libguestfs before 1.56 printed `sles15sp5`).
//!   - ubuntu: minor on two digits, `ubuntu22.04`.
//!   - archlinux, gentoo, voidlinux (rolling): the bare name.
//!   - altlinux: `alt8.1` from 8 on, `altlinux7.0` before.
//!   - any other known distro with a non-zero version: generic `<distro><major>.<minor>`
//!     (`rhel9.2`, `opensuse15.5`, `alpinelinux3.19`).
//! * Windows, by NT version (CurrentMajorVersionNumber/CurrentMinorVersionNumber, else
//!   CurrentVersion), "Server" in InstallationType (the product variant), product name, build:
//!   - 5.1 `winxp`; 5.2 `winxp` if the name says XP, `win2k3r2` if it says R2, else `win2k3`.
//!   - 6.0/6.1/6.2/6.3: server `win2k8`/`win2k8r2`/`win2k12`/`win2k12r2`, client
//!     `winvista`/`win7`/`win8`/`win8.1`.
//!   - 10.0 server: the name's year picks `win2k25`/`win2k22`/`win2k19`, otherwise `win2k16`;
//!     10.0 client: CurrentBuildNumber 22000 and later `win11`, else `win10` (libguestfs
//!     before 1.50 said `win10` for both, and had no `win2k25`).
//!
//! Where libguestfs answers "unknown" this gives None. It also gives None, rather than
//! guess, where libguestfs' answer would come from files Ikon does not read: an os-release
//! `ID` libguestfs does not know (it then falls back to release files, e.g. AlmaLinux becomes
//! `redhat-based9.2`), a release without a version (libguestfs would find one elsewhere), a
//! redhat-release that is not Red Hat's (Scientific Linux), Debian before 4 (Ikon keeps only
//! the major of /etc/debian_version).

use crate::linux::LinuxInfo;
use crate::windows::WindowsInfo;
use crate::OsInfo;

/// The libosinfo short id for an OS found by inspection, None when there is none to give.
pub fn short_id(os: &OsInfo) -> Option<String> {
    if let Some(l) = &os.linux {
        return linux(l);
    }
    os.windows.as_ref().and_then(windows)
}

/// Version as libguestfs parses it: the first `N.M`, else the first `N` (minor 0).
/// `Ok(None)`: no number at all; `Err(())`: a number too large to be a version.
fn major_minor(s: &str) -> Result<Option<(u32, u32)>, ()> {
    let b = s.as_bytes();
    let run = |from: usize| {
        from + b
            .get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let num = |from: usize, to: usize| s.get(from..to).and_then(|d| d.parse::<u32>().ok());
    let mut first: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let end = run(i);
        first.get_or_insert((i, end));
        if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
            let mend = run(end + 1);
            return match (num(i, end), num(end + 1, mend)) {
                (Some(ma), Some(mi)) => Ok(Some((ma, mi))),
                _ => Err(()),
            };
        }
        i = end;
    }
    match first {
        None => Ok(None),
        Some((a, z)) => num(a, z).map(|ma| Some((ma, 0))).ok_or(()),
    }
}

/// libguestfs' distro name for Ikon's distro id, None when libguestfs would not take the
/// id from os-release (or the matching release file) and so would decide from other files.
fn libguestfs_distro(l: &LinuxInfo) -> Option<&'static str> {
    let d = match l.distro.as_str() {
        "alpine" => "alpinelinux",
        "altlinux" => "altlinux",
        "arch" => "archlinux",
        "centos" => "centos",
        "circle" => "circle",
        "coreos" => "coreos",
        "debian" => "debian",
        "fedora" | "fcos" => "fedora",
        "frugalware" => "frugalware",
        "gentoo" => "gentoo",
        "kali" => "kalilinux",
        "kylin" => "kylin",
        "mageia" => "mageia",
        "neokylin" => "neokylin",
        "openeuler" => "openeuler",
        "openmandriva" => "openmandriva",
        "opencloudos" => "opencloudos",
        "tencentos" => "tencentos",
        "opensuse" => "opensuse",
        "pardus" => "pardus",
        "pld" => "pldlinux",
        "rocky" => "rocky",
        "ubuntu" => "ubuntu",
        "void" => "voidlinux",
        // A redhat-release line that is not Red Hat's (Scientific Linux, ...) is another
        // distro to libguestfs; os-release names ("Red Hat Enterprise Linux") have no
        // " release ".
        "rhel" if l.name.contains(" release ") && !l.name.contains("Red Hat") => return None,
        "rhel" => "rhel",
        // A SuSE-release first line libguestfs reads as openSUSE ("SUSE LINUX 10.0").
        "sles" if is_old_opensuse(&l.name) => "opensuse",
        "sles" => "sles",
        _ => return None,
    };
    Some(d)
}

/// libguestfs' openSUSE pattern for a SuSE-release first line (its SLES pattern wins).
fn is_old_opensuse(name: &str) -> bool {
    let sles = ["SUSE Linux Enterprise ", "SUSE LINUX Enterprise "];
    let suse = ["openSUSE ", "SuSE Linux ", "SUSE LINUX "];
    !sles.iter().any(|p| name.starts_with(p)) && suse.iter().any(|p| name.starts_with(p))
}

/// "Red Hat Enterprise Linux AS release 4 (Nahant Update 9)": libguestfs takes the minor
/// from "Update N" when the release number has none.
fn update_minor(name: &str) -> Option<u32> {
    let (_, rest) = name.split_once(" release ")?;
    let (_, after) = rest.split_once("Update ")?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The short id for a Linux guest.
pub fn linux(l: &LinuxInfo) -> Option<String> {
    let d = libguestfs_distro(l)?;
    if matches!(d, "archlinux" | "gentoo" | "voidlinux") {
        return Some(d.to_string());
    }
    // No version: libguestfs would look in other release files, which Ikon does not read.
    let (major, mut minor) = major_minor(&l.version).ok()??;
    if matches!(d, "rhel" | "centos") && !l.version.contains('.') {
        if let Some(u) = update_minor(&l.name) {
            minor = u;
        }
    }
    if major == 0 && minor == 0 {
        return None;
    }
    let id = match d {
        "centos" if major >= 8 => format!("centos{major}"),
        "centos" if major == 7 => "centos7.0".to_string(),
        "circle" | "rocky" if major >= 8 => format!("{d}{major}"),
        "debian" if major >= 4 => format!("debian{major}"),
        // Ikon keeps only the major of /etc/debian_version on these old releases.
        "debian" => return None,
        "fedora" | "mageia" => format!("{d}{major}"),
        "sles" => {
            let base = if major >= 15 { "sle" } else { "sles" };
            if minor == 0 {
                format!("{base}{major}")
            } else {
                format!("{base}{major}sp{minor}")
            }
        }
        "ubuntu" => format!("ubuntu{major}.{minor:02}"),
        "altlinux" if major >= 8 => format!("alt{major}.{minor}"),
        _ => format!("{d}{major}.{minor}"),
    };
    Some(id)
}

/// The short id for a Windows guest.
pub fn windows(w: &WindowsInfo) -> Option<String> {
    let (major, minor) = major_minor(&w.version).ok()??;
    let server = w.installation_type.contains("Server");
    let name = w.product_name.as_str();
    let id = match (major, minor) {
        (5, 1) => "winxp",
        (5, 2) if name.contains("XP") => "winxp",
        (5, 2) if name.contains("R2") => "win2k3r2",
        (5, 2) => "win2k3",
        (6, 0) if server => "win2k8",
        (6, 0) => "winvista",
        (6, 1) if server => "win2k8r2",
        (6, 1) => "win7",
        (6, 2) if server => "win2k12",
        (6, 2) => "win8",
        (6, 3) if server => "win2k12r2",
        (6, 3) => "win8.1",
        (10, 0) if server => {
            if name.contains("2025") {
                "win2k25"
            } else if name.contains("2022") {
                "win2k22"
            } else if name.contains("2019") {
                "win2k19"
            } else {
                "win2k16"
            }
        }
        // Windows 11 still calls itself "Windows 10 ..."; only the build tells.
        (10, 0) => {
            let build: u32 = w.build.trim_start().parse().ok()?;
            if build >= 22000 {
                "win11"
            } else {
                "win10"
            }
        }
        _ => return None,
    };
    Some(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lx(distro: &str, version: &str) -> Option<String> {
        lxn(distro, version, "")
    }

    fn lxn(distro: &str, version: &str, name: &str) -> Option<String> {
        linux(&LinuxInfo {
            distro: distro.into(),
            version: version.into(),
            name: name.into(),
            ..LinuxInfo::default()
        })
    }

    fn win(version: &str, insttype: &str, product: &str, build: &str) -> Option<String> {
        windows(&WindowsInfo {
            version: version.into(),
            installation_type: insttype.into(),
            product_name: product.into(),
            build: build.into(),
            ..WindowsInfo::default()
        })
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn versions_parse_like_libguestfs() {
        assert_eq!(major_minor("22.04"), Ok(Some((22, 4))));
        assert_eq!(major_minor("3.19.1"), Ok(Some((3, 19))));
        assert_eq!(major_minor("12"), Ok(Some((12, 0))));
        assert_eq!(major_minor("7.9.2009"), Ok(Some((7, 9))));
        assert_eq!(major_minor("V10Update3"), Ok(Some((10, 0))));
        assert_eq!(major_minor("x 2. 5.1"), Ok(Some((5, 1))));
        assert_eq!(major_minor("15-SP5"), Ok(Some((15, 0))));
        assert_eq!(major_minor(""), Ok(None));
        assert_eq!(major_minor("rolling"), Ok(None));
        assert_eq!(major_minor("99999999999.1"), Err(()));
        assert_eq!(major_minor("99999999999"), Err(()));
    }

    #[test]
    fn red_hat_family() {
        assert_eq!(lx("centos", "7"), s("centos7.0"));
        assert_eq!(lx("centos", "7.9.2009"), s("centos7.0"));
        assert_eq!(lx("centos", "8"), s("centos8"));
        assert_eq!(lx("centos", "9"), s("centos9"));
        assert_eq!(lx("centos", "6.10"), s("centos6.10"));
        assert_eq!(lx("centos", "5.11"), s("centos5.11"));
        assert_eq!(lx("rhel", "9.2"), s("rhel9.2"));
        assert_eq!(lx("rhel", "8.0"), s("rhel8.0"));
        assert_eq!(
            lxn("rhel", "7.9", "Red Hat Enterprise Linux Server"),
            s("rhel7.9")
        );
        assert_eq!(
            lxn(
                "rhel",
                "4",
                "Red Hat Enterprise Linux AS release 4 (Nahant Update 9)"
            ),
            s("rhel4.9")
        );
        assert_eq!(
            lxn("rhel", "6.4", "Scientific Linux release 6.4 (Carbon)"),
            None
        );
        assert_eq!(lx("rocky", "9.2"), s("rocky9"));
        assert_eq!(lx("circle", "8.6"), s("circle8"));
        assert_eq!(lx("fedora", "39"), s("fedora39"));
        assert_eq!(lx("fcos", "39"), s("fedora39"));
        assert_eq!(lx("mageia", "9"), s("mageia9"));
        assert_eq!(lx("almalinux", "9.2"), None);
        assert_eq!(lx("ol", "8.9"), None);
    }

    #[test]
    fn debian_and_ubuntu() {
        assert_eq!(lx("debian", "12"), s("debian12"));
        assert_eq!(lx("debian", "12.5"), s("debian12"));
        assert_eq!(lx("debian", "4"), s("debian4"));
        assert_eq!(lx("debian", "3"), None);
        assert_eq!(lx("debian", ""), None);
        assert_eq!(lx("ubuntu", "22.04"), s("ubuntu22.04"));
        assert_eq!(lx("ubuntu", "24.10"), s("ubuntu24.10"));
        assert_eq!(lx("ubuntu", "22.04.3"), s("ubuntu22.04"));
        assert_eq!(lx("kali", "2024.1"), s("kalilinux2024.1"));
        assert_eq!(lx("linuxmint", "21.2"), None);
    }

    #[test]
    fn suse() {
        assert_eq!(lx("sles", "15.5"), s("sle15sp5"));
        assert_eq!(lx("sles", "15"), s("sle15"));
        assert_eq!(lx("sles", "12.4"), s("sles12sp4"));
        assert_eq!(lx("sles", "12"), s("sles12"));
        assert_eq!(
            lxn("sles", "11.4", "SUSE Linux Enterprise Server 11 (x86_64)"),
            s("sles11sp4")
        );
        assert_eq!(
            lxn("sles", "10.0", "SUSE LINUX 10.0 (i586) OSS"),
            s("opensuse10.0")
        );
        assert_eq!(lx("opensuse", "15.5"), s("opensuse15.5"));
        // What libguestfs prints for Tumbleweed (not a libosinfo id, but its answer).
        assert_eq!(lx("opensuse", "20240101"), s("opensuse20240101.0"));
    }

    #[test]
    fn others() {
        assert_eq!(lx("alpine", "3.19.1"), s("alpinelinux3.19"));
        assert_eq!(lx("arch", ""), s("archlinux"));
        assert_eq!(lx("gentoo", "2.15"), s("gentoo"));
        assert_eq!(lx("void", ""), s("voidlinux"));
        assert_eq!(lx("altlinux", "10.1"), s("alt10.1"));
        assert_eq!(lx("altlinux", "7.0.5"), s("altlinux7.0"));
        assert_eq!(lx("openeuler", "22.03"), s("openeuler22.3"));
        assert_eq!(lx("unknown", ""), None);
        assert_eq!(lx("unknown", "1.0"), None);
        assert_eq!(lx("fedora", ""), None);
        assert_eq!(lx("ubuntu", "0.0"), None);
        assert_eq!(lx("fedora", "99999999999"), None);
    }

    #[test]
    fn windows_nt5_and_nt6() {
        assert_eq!(win("5.1", "", "Microsoft Windows XP", "2600"), s("winxp"));
        assert_eq!(
            win("5.2", "", "Microsoft Windows XP Professional x64", "3790"),
            s("winxp")
        );
        assert_eq!(
            win("5.2", "", "Microsoft Windows Server 2003 R2", "3790"),
            s("win2k3r2")
        );
        assert_eq!(
            win("5.2", "", "Microsoft Windows Server 2003", "3790"),
            s("win2k3")
        );
        assert_eq!(win("5.0", "", "Windows 2000", "2195"), None);
        let pairs = [
            ("6.0", "win2k8", "winvista"),
            ("6.1", "win2k8r2", "win7"),
            ("6.2", "win2k12", "win8"),
            ("6.3", "win2k12r2", "win8.1"),
        ];
        for (v, server, client) in pairs {
            assert_eq!(win(v, "Server", "Windows", "1"), s(server), "{v}");
            assert_eq!(win(v, "Server Core", "Windows", "1"), s(server), "{v}");
            assert_eq!(win(v, "Client", "Windows", "1"), s(client), "{v}");
            // No InstallationType: libguestfs' variant is "unknown", i.e. not a server.
            assert_eq!(win(v, "", "Windows Server", "1"), s(client), "{v}");
        }
    }

    #[test]
    fn windows_nt10_shares_a_version() {
        let srv = |name| win("10.0", "Server", name, "17763");
        assert_eq!(srv("Windows Server 2016 Datacenter"), s("win2k16"));
        assert_eq!(srv("Windows Server 2019 Standard"), s("win2k19"));
        assert_eq!(srv("Windows Server 2022 Datacenter"), s("win2k22"));
        assert_eq!(srv("Windows Server 2025 Standard"), s("win2k25"));
        assert_eq!(srv("Windows Server Datacenter"), s("win2k16"));
        assert_eq!(win("10.0", "Client", "Windows 10 Pro", "19045"), s("win10"));
        assert_eq!(win("10.0", "Client", "Windows 10 Pro", "22000"), s("win11"));
        assert_eq!(
            win("10.0", "Client", "Windows 10 Enterprise", "26100"),
            s("win11")
        );
        assert_eq!(win("10.0", "Client", "Windows 10 Pro", ""), None);
        assert_eq!(win("10.0", "Client", "Windows 10 Pro", "19045.1"), None);
        assert_eq!(win("10.1", "Client", "Windows", "19045"), None);
        assert_eq!(win("", "Server", "Windows Server 2019", "17763"), None);
    }

    #[test]
    fn dispatch_by_os() {
        let mut os = OsInfo {
            os_type: "linux".into(),
            osinfo: None,
            root_partition: 1,
            root_fs: crate::FsType::Xfs,
            linux: None,
            windows: None,
        };
        assert_eq!(short_id(&os), None);
        os.linux = Some(LinuxInfo {
            distro: "debian".into(),
            version: "12".into(),
            ..LinuxInfo::default()
        });
        assert_eq!(short_id(&os), s("debian12"));
    }
}
