//! The hygiene scan: what an image's maker left behind that would hurt the people who run
//! it (login secrets, keys every instance would share, credentials, histories), found
//! through the same readers that inspect guests, without booting or mounting.
//!
//! The checks live in [`linux`] and [`windows`]; each reports a [`Hit`] (finding id, path,
//! a sentence about this case). [`scan`] turns hits into [`Finding`]s with the severity the
//! caller's [`ScanConfig`] gives (the policy decides which ids block) and the advice of
//! [`CHECKS`]. No secret value is ever put into a finding: a password hash is reported as
//! present, a key by its path.

pub mod linux;
mod sshd;
pub mod windows;

use crate::{ext4, ntfsfs, FsType, Inspection};
use ikon_disk::BlockDevice;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never refuses anything.
    Info,
    /// Shown to reviewers and the image's owner.
    Warn,
    /// Refuses a marketplace listing.
    Block,
}

impl Severity {
    /// The lowercase name (`block`, `warn`, `info`).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Block => "block",
        }
    }
}

/// One known check: its id, the severity it has when the policy does not say, and how to
/// fix what it finds.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Stable id (the policy's key).
    pub id: &'static str,
    /// Severity when the configuration does not name the id.
    pub default: Severity,
    /// What to do about it (appended to every finding's sentence).
    pub fix: &'static str,
}

/// Every check the scan runs.
pub const CHECKS: &[Check] = &[
    Check { id: "empty-password", default: Severity::Block, fix: "Anyone can log in to that account without a password on every instance: lock it (passwd -l) or set the field to '!' or '*'." },
    Check { id: "password-hash", default: Severity::Warn, fix: "Whoever knows that password can log in to every instance: lock the password (passwd -l) and let users set their own at first boot." },
    Check { id: "authorized-keys", default: Severity::Block, fix: "The key's owner can log in to every instance made from the image: empty the file before capturing the image (cloud-init installs the user's key at first boot)." },
    Check { id: "ssh-host-key", default: Severity::Warn, fix: "Every instance would share the host key, so one can impersonate another: delete /etc/ssh/ssh_host_* so they are generated at first boot." },
    Check { id: "private-key", default: Severity::Warn, fix: "A private key shipped in an image is no longer private: remove it and revoke it where it is trusted." },
    Check { id: "shell-history", default: Severity::Warn, fix: "Shell histories often hold passwords and hostnames: empty them before capturing the image." },
    Check { id: "cloud-credentials", default: Severity::Block, fix: "Anyone running the image gets the maker's cloud account: remove the file and rotate the credentials." },
    Check { id: "sshd-root-password", default: Severity::Warn, fix: "Root can log in over SSH with a password, which invites password guessing: set PermitRootLogin prohibit-password or PasswordAuthentication no." },
    Check { id: "machine-id", default: Severity::Warn, fix: "Every instance would share the machine id (DHCP client ids, journal, D-Bus): empty /etc/machine-id so it is generated at first boot." },
    Check { id: "no-first-boot-agent", default: Severity::Info, fix: "Without cloud-init (or an equivalent agent) instances cannot receive the user's key, password or network settings at first boot." },
    Check { id: "autologon-password", default: Severity::Block, fix: "The password is stored in clear text and the machine logs in by itself: delete DefaultPassword and set AutoAdminLogon to 0." },
    Check { id: "unattend-password", default: Severity::Block, fix: "The answer file keeps a password in clear text (or base64): delete the file or run sysprep, which replaces passwords with *SENSITIVE*DATA*DELETED*." },
    Check { id: "not-generalised", default: Severity::Info, fix: "Instances would share the machine SID and computer name: run sysprep /generalize /oobe before capturing the image." },
];

/// The check with `id`.
pub fn check(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.id == id)
}

/// Which severity each finding id has (ids not named keep their [`Check::default`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScanConfig {
    /// Name of the rule set (e.g. the policy preset).
    #[serde(default)]
    pub name: String,
    /// Severity per finding id.
    #[serde(default)]
    pub severities: BTreeMap<String, Severity>,
}

impl ScanConfig {
    /// The severity of `id` under this configuration.
    pub fn severity(&self, id: &str) -> Severity {
        self.severities
            .get(id)
            .copied()
            .or_else(|| check(id).map(|c| c.default))
            .unwrap_or(Severity::Warn)
    }
}

/// What a check found, before the configuration gives it a severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Check id.
    pub id: &'static str,
    /// Path in the guest (`/etc/shadow`, `C:\Windows\Panther\unattend.xml`) or registry
    /// value (`HKLM\SOFTWARE\…\DefaultPassword`).
    pub path: String,
    /// What was found, as a sentence without the secret.
    pub what: String,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Check id.
    pub id: String,
    /// Severity under the configuration used.
    pub severity: Severity,
    /// Path or registry key.
    pub path: String,
    /// What it means and how to fix it.
    pub message: String,
}

/// The scan's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scan {
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Operating systems scanned ("linux", "windows").
    pub scanned: Vec<String>,
    /// Problems met (non-empty = some places could not be read).
    pub problems: Vec<String>,
}

impl Scan {
    /// The most severe finding's severity (None when there is none).
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Findings at `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// `what` as the start of a sentence: first letter capitalised, no final period.
fn sentence(what: &str) -> String {
    let what = what.trim().trim_end_matches('.');
    let mut c = what.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Puts findings in report order: most severe first, then by id and path.
pub fn sort_findings(f: &mut [Finding]) {
    f.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.path.cmp(&b.path))
    });
}

/// Turns hits into findings under `cfg`, most severe first (then by id and path).
pub fn findings(hits: Vec<Hit>, cfg: &ScanConfig) -> Vec<Finding> {
    let mut out: Vec<Finding> = hits
        .into_iter()
        .map(|h| {
            let fix = check(h.id).map(|c| c.fix).unwrap_or("");
            Finding {
                id: h.id.to_string(),
                severity: cfg.severity(h.id),
                path: h.path,
                message: format!("{}. {fix}", sentence(&h.what)),
            }
        })
        .collect();
    sort_findings(&mut out);
    out.dedup();
    out
}

/// Bytes the scan may read, whatever the guest's metadata looks like (a clean 50 GiB Linux
/// guest takes about 1 MiB; a real Debian tree about 15 MiB): past it, reads fail and the
/// scan reports a problem instead of going on.
pub const READ_BUDGET: u64 = 256 << 20;

/// Scans every operating system `ins` found on `dev` (the inspection of the same device),
/// reading at most [`READ_BUDGET`] bytes.
pub fn scan(dev: &dyn BlockDevice, ins: &Inspection, cfg: &ScanConfig) -> Scan {
    let budget = ikon_disk::CountingDevice::with_limit(dev, READ_BUDGET);
    let dev: &dyn BlockDevice = &budget;
    let mut hits = Vec::new();
    let mut scan = Scan::default();
    for os in &ins.operating_systems {
        let Some(fs) = ins
            .filesystems
            .iter()
            .find(|f| f.partition == os.root_partition)
        else {
            continue;
        };
        match os.root_fs {
            FsType::Ext2 | FsType::Ext3 | FsType::Ext4 => {
                match ext4::Ext4::open(dev, fs.offset, fs.size) {
                    Ok(e) => {
                        let cloud_init = os.linux.as_ref().is_some_and(|l| l.cloud_init);
                        linux::scan(&e, cloud_init, &mut hits, &mut scan.problems);
                        scan.scanned.push("linux".into());
                    }
                    Err(e) => scan
                        .problems
                        .push(format!("partition {}: {e}", os.root_partition)),
                }
            }
            FsType::Ntfs => {
                // The ntfs crate is third-party code: contain any panic on hostile input.
                let mut found = Vec::new();
                let mut probs = Vec::new();
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    ntfsfs::NtfsFs::open(dev, fs.offset, fs.size)
                        .map(|n| windows::scan(&n, &mut found, &mut probs))
                }));
                match r {
                    Ok(Ok(())) => {
                        hits.append(&mut found);
                        scan.problems.append(&mut probs);
                        scan.scanned.push("windows".into());
                    }
                    Ok(Err(e)) => scan
                        .problems
                        .push(format!("partition {}: {e}", os.root_partition)),
                    Err(_) => scan.problems.push(format!(
                        "partition {}: NTFS reader failed on corrupt metadata",
                        os.root_partition
                    )),
                }
            }
            other => scan.problems.push(format!(
                "partition {} holds {}, whose contents Ikon does not read: not scanned",
                os.root_partition,
                other.name()
            )),
        }
    }
    if budget.bytes() > READ_BUDGET {
        scan.problems.push(format!(
            "the scan stopped after reading {READ_BUDGET} bytes: the guest's metadata is \
             unusually large or hostile; findings may be missing"
        ));
    }
    scan.findings = findings(hits, cfg);
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_advice_and_a_unique_id() {
        for (i, c) in CHECKS.iter().enumerate() {
            assert!(c.fix.ends_with('.'), "{}", c.id);
            assert!(CHECKS[i + 1..].iter().all(|d| d.id != c.id), "{}", c.id);
        }
    }

    #[test]
    fn configuration_decides_severity_and_order() {
        let mut cfg = ScanConfig::default();
        cfg.severities.insert("machine-id".into(), Severity::Block);
        let hits = vec![
            Hit {
                id: "no-first-boot-agent",
                path: "/etc/cloud".into(),
                what: "no agent".into(),
            },
            Hit {
                id: "machine-id",
                path: "/etc/machine-id".into(),
                what: "fixed id.".into(),
            },
            Hit {
                id: "shell-history",
                path: "/root/.bash_history".into(),
                what: "history".into(),
            },
        ];
        let f = findings(hits, &cfg);
        let ids: Vec<_> = f.iter().map(|f| (f.id.as_str(), f.severity)).collect();
        assert_eq!(
            ids,
            [
                ("machine-id", Severity::Block),
                ("shell-history", Severity::Warn),
                ("no-first-boot-agent", Severity::Info)
            ]
        );
        assert!(f[0].message.starts_with("Fixed id. Every instance"));
    }
}
