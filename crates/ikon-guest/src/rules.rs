//! Import rules: a serde-deserializable configuration (whose values come from the service's
//! policy documents) evaluated against an `Inspection`. Each rule has a stable id, a verdict
//! and a sentence a person understands.

use crate::{FsType, Inspection, TableKind};
use serde::{Deserialize, Serialize};

/// Verdict of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Satisfied.
    Pass,
    /// Violated: the image will be refused.
    Fail,
    /// Allowed, but something the user must know or do.
    Warn,
}

/// One evaluated rule.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// Stable id (e.g. "partition-table").
    pub id: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Explanation.
    pub message: String,
}

/// Limits of a cloud's import rules. The values are a policy's (the service's preset
/// documents and an operator's overrides); this crate only evaluates them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RulesConfig {
    /// Preset name.
    pub name: String,
    /// Accepted container formats.
    pub formats: Vec<String>,
    /// Whether other formats are converted automatically (format rule is then informational).
    pub formats_converted: bool,
    /// Accepted Linux distribution ids.
    pub linux_distros: Vec<String>,
    /// Accepted Linux word sizes.
    pub linux_bits: Vec<u32>,
    /// Accepted Windows versions (product name substrings, e.g. "2012 R2").
    pub windows_versions: Vec<String>,
    /// Accepted Windows word sizes.
    pub windows_bits: Vec<u32>,
    /// Accepted partition tables.
    pub partition_tables: Vec<TableKind>,
    /// Accepted Linux root filesystems.
    pub linux_root_fs: Vec<FsType>,
    /// Accepted Windows root filesystems.
    pub windows_root_fs: Vec<FsType>,
    /// Maximum system disk virtual size in bytes.
    pub max_virtual_size: u64,
    /// virtio drivers required.
    pub require_virtio: bool,
    /// Distros that need BYOL (warn).
    pub byol_distros: Vec<String>,
    /// Maximum NICs before a warning.
    pub max_nics: usize,
    /// Warn when IPv6 is enabled.
    pub warn_ipv6: bool,
}

const GIB: u64 = 1 << 30;

fn r(id: &str, verdict: Verdict, message: String) -> Rule {
    Rule {
        id: id.into(),
        verdict,
        message,
    }
}

fn gib(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let g = n as f64 / GIB as f64;
    format!("{g:.1} GiB")
}

/// Evaluate the rules.
pub fn evaluate(ins: &Inspection, cfg: &RulesConfig) -> Vec<Rule> {
    use Verdict::{Fail, Pass, Warn};
    let mut out = Vec::new();
    let fmt_ok = cfg.formats.iter().any(|f| f == &ins.format);
    out.push(if fmt_ok {
        r("format", Pass, format!("format {} is accepted", ins.format))
    } else if cfg.formats_converted {
        r(
            "format",
            Pass,
            format!(
                "format {} is converted on import to {}",
                ins.format,
                cfg.formats.join("/")
            ),
        )
    } else {
        r(
            "format",
            Fail,
            format!(
                "format {} is not accepted; this cloud accepts {}",
                ins.format,
                cfg.formats.join(", ")
            ),
        )
    });
    let tk = ins.partition_table.kind;
    let tname = match tk {
        TableKind::Mbr => "MBR",
        TableKind::Gpt => "GPT",
        TableKind::None
            if ins
                .filesystems
                .iter()
                .all(|f| f.info.fs_type == FsType::Unknown) =>
        {
            "absent, and no filesystem was found either (a blank disk, or not a system disk)"
        }
        TableKind::None => "absent (filesystem on the whole disk)",
    };
    out.push(if cfg.partition_tables.contains(&tk) {
        r(
            "partition-table",
            Pass,
            format!("partition table is {tname}"),
        )
    } else {
        r(
            "partition-table",
            Fail,
            format!("partition table is {tname}; this cloud accepts MBR only"),
        )
    });
    out.push(if ins.virtual_size <= cfg.max_virtual_size {
        r(
            "disk-size",
            Pass,
            format!(
                "virtual size {} is within the {} limit",
                gib(ins.virtual_size),
                gib(cfg.max_virtual_size)
            ),
        )
    } else {
        r(
            "disk-size",
            Fail,
            format!(
                "virtual size {} exceeds the system disk limit of {}",
                gib(ins.virtual_size),
                gib(cfg.max_virtual_size)
            ),
        )
    });
    if ins.partial {
        out.push(r(
            "readable",
            Warn,
            format!("inspection is partial: {}", ins.problems.join("; ")),
        ));
    }
    let Some(os) = ins.operating_systems.first() else {
        out.push(r(
            "os",
            Fail,
            "no operating system was found on the disk".into(),
        ));
        return out;
    };
    if os.os_type == "windows" {
        out.push(if cfg.windows_root_fs.contains(&os.root_fs) {
            r(
                "root-fs",
                Pass,
                format!("system filesystem is {}", os.root_fs.name()),
            )
        } else {
            r(
                "root-fs",
                Fail,
                format!(
                    "system filesystem is {}; this cloud accepts NTFS only",
                    os.root_fs.name()
                ),
            )
        });
        let Some(w) = &os.windows else {
            out.push(r(
                "os",
                Fail,
                "Windows was found but its registry could not be read".into(),
            ));
            return out;
        };
        let name = format!(
            "{} (version {}, build {})",
            w.product_name, w.version, w.build
        );
        let listed = cfg.windows_versions.iter().any(|v| {
            w.product_name.contains(&format!("Server {v} "))
                || w.product_name.ends_with(&format!("Server {v}"))
        });
        out.push(if !w.server {
            r(
                "os",
                Fail,
                format!(
                    "{name} is a client edition; this cloud accepts Windows Server {} only",
                    cfg.windows_versions.join(", ")
                ),
            )
        } else if listed {
            r(
                "os",
                Pass,
                format!("{name} is a supported Windows Server version"),
            )
        } else {
            r(
                "os",
                Fail,
                format!(
                    "{name} is not on this cloud's list (Windows Server {})",
                    cfg.windows_versions.join(", ")
                ),
            )
        });
        out.push(match w.bits {
            Some(b) if cfg.windows_bits.contains(&b) => r(
                "arch",
                Pass,
                format!("{b}-bit {}", w.arch.clone().unwrap_or_default()),
            ),
            Some(b) => r(
                "arch",
                Fail,
                format!("{b}-bit Windows is not accepted; this cloud accepts 64-bit only"),
            ),
            None => r(
                "arch",
                Fail,
                "the Windows architecture could not be determined".into(),
            ),
        });
        if cfg.require_virtio {
            let mut missing = Vec::new();
            if !w.virtio_storage {
                missing.push("viostor/vioscsi (storage)");
            }
            if !w.virtio_net {
                missing.push("netkvm (network)");
            }
            out.push(if missing.is_empty() {
                r("virtio", Pass, "virtio storage and network drivers are installed".into())
            } else {
                r("virtio", Fail, format!("missing virtio drivers: {}; the instance would not boot or have no network", missing.join(", ")))
            });
        }
        return out;
    }
    let fsnames: Vec<&str> = cfg.linux_root_fs.iter().map(|f| f.name()).collect();
    out.push(if cfg.linux_root_fs.contains(&os.root_fs) {
        r(
            "root-fs",
            Pass,
            format!("root filesystem is {}", os.root_fs.name()),
        )
    } else {
        r(
            "root-fs",
            Fail,
            format!(
                "root filesystem is {}; this cloud accepts {} only",
                os.root_fs.name(),
                fsnames.join(" or ")
            ),
        )
    });
    let Some(l) = &os.linux else {
        out.push(r(
            "os",
            Fail,
            "the Linux distribution could not be read".into(),
        ));
        return out;
    };
    let pretty = if l.name.is_empty() {
        l.distro.clone()
    } else {
        format!("{} {}", l.name, l.version)
    };
    out.push(if cfg.linux_distros.contains(&l.distro) {
        r("os", Pass, format!("{pretty} is a supported distribution"))
    } else {
        r(
            "os",
            Fail,
            format!(
                "distribution {pretty} ({}) is not on this cloud's list ({})",
                l.distro,
                cfg.linux_distros.join(", ")
            ),
        )
    });
    out.push(match l.bits {
        Some(b) if cfg.linux_bits.contains(&b) => r(
            "arch",
            Pass,
            format!("{}-bit {}", b, l.arch.clone().unwrap_or_default()),
        ),
        Some(b) => r("arch", Fail, format!("{b}-bit guests are not accepted")),
        None => r(
            "arch",
            Warn,
            "architecture could not be determined (no ELF shell or init found)".into(),
        ),
    });
    if cfg.require_virtio {
        let mut missing = Vec::new();
        if !l.virtio_blk {
            missing.push("virtio_blk");
        }
        if !l.virtio_net {
            missing.push("virtio_net");
        }
        out.push(if missing.is_empty() {
            r(
                "virtio",
                Pass,
                "virtio block and network drivers are present".into(),
            )
        } else {
            r(
                "virtio",
                Fail,
                format!(
                    "missing virtio drivers: {}; the instance would not boot or have no network",
                    missing.join(", ")
                ),
            )
        });
    }
    if cfg.byol_distros.contains(&l.distro) {
        out.push(r(
            "byol",
            Warn,
            "Red Hat Enterprise Linux may be imported only with your own subscription (BYOL)"
                .into(),
        ));
    }
    out.push(if l.nics.len() > cfg.max_nics {
        r(
            "nics",
            Warn,
            format!(
                "{} network interfaces are configured ({}); only one (eth0) is supported",
                l.nics.len(),
                l.nics.join(", ")
            ),
        )
    } else {
        r(
            "nics",
            Pass,
            format!("{} network interface(s) configured", l.nics.len()),
        )
    });
    if cfg.warn_ipv6 {
        out.push(if l.ipv6 {
            r("ipv6", Warn, "IPv6 is enabled in the guest's network configuration; this cloud does not support IPv6".into())
        } else {
            r("ipv6", Pass, "IPv6 is not enabled".into())
        });
    }
    out
}

/// Whether the image may be imported (no rule failed).
pub fn importable(rules: &[Rule]) -> bool {
    rules.iter().all(|r| r.verdict != Verdict::Fail)
}
