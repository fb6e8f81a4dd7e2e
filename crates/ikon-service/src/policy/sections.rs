//! The sections of a policy document: regions and zones, names, limits, imports, guest
//! checks, instances, instance types and prices. Each is plain data; the values live in the
//! preset documents (`tencent.toml`, `alibaba.toml`) and an operator's `--config`, never here.

use serde::{Deserialize, Serialize};

/// A zone of a region.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// Zone name, e.g. `ap-guangzhou-3`.
    pub name: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Numeric zone id (as a string, like the API shows it).
    #[serde(default)]
    pub zone_id: String,
    /// `AVAILABLE` or `UNAVAILABLE`.
    #[serde(default = "available")]
    pub state: String,
}

/// A region.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Region name, e.g. `ap-guangzhou`.
    pub name: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// `AVAILABLE` or `UNAVAILABLE`.
    #[serde(default = "available")]
    pub state: String,
    /// Zones.
    #[serde(default)]
    pub zones: Vec<Zone>,
    /// Where this region's chunks live: `s3://bucket/prefix` (a bucket of the `[s3]`
    /// engine) or a directory. Default: the data directory's chunk store. Regions naming the
    /// same location share one store (a copy between them moves nothing).
    #[serde(default)]
    pub store: Option<String>,
    /// Whether images may be copied to and from this region (the cross-region copy policy).
    #[serde(default = "yes")]
    pub copy_allowed: bool,
    /// Zone instances go to when a request names none (default: the region's first zone).
    #[serde(default)]
    pub default_zone: Option<String>,
}

impl Zone {
    /// Whether instances can be placed in it.
    pub fn available(&self) -> bool {
        self.state == "AVAILABLE"
    }
}

impl Region {
    /// Whether it takes requests.
    pub fn available(&self) -> bool {
        self.state == "AVAILABLE"
    }

    /// The zone instances go to when a request names none.
    pub fn default_zone(&self) -> Option<&Zone> {
        match &self.default_zone {
            Some(name) => self.zones.iter().find(|z| &z.name == name),
            None => self.zones.first(),
        }
    }
}

fn available() -> String {
    "AVAILABLE".into()
}

fn yes() -> bool {
    true
}

/// What a piece of text supplied by a user (a name, a description) may be.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TextRule {
    /// Fewest characters when given (0: may be empty).
    pub min: usize,
    /// Most characters.
    pub max: usize,
    /// The first character must be a letter.
    #[serde(default)]
    pub starts_with_letter: bool,
    /// Prefixes (compared without case) the text must not start with.
    #[serde(default)]
    pub forbidden_prefixes: Vec<String>,
}

/// Why a text breaks its [`TextRule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    /// Longer than `max`.
    TooLong,
    /// Shorter than `min`, a bad first character, a forbidden prefix or a control character.
    Malformed,
}

impl TextRule {
    /// Checks `text`; the sentence says what the rule is.
    pub fn check(&self, text: &str) -> Result<(), (TextProblem, String)> {
        let n = text.chars().count();
        let lower = text.to_lowercase();
        let explain = || {
            let mut s = format!("{} to {} characters", self.min, self.max);
            if self.starts_with_letter {
                s.push_str(", starting with a letter");
            }
            if !self.forbidden_prefixes.is_empty() {
                s.push_str(&format!(
                    ", not starting with {}",
                    self.forbidden_prefixes.join(" or ")
                ));
            }
            s.push_str(", no control characters");
            s
        };
        if n > self.max {
            return Err((TextProblem::TooLong, explain()));
        }
        let blank = self.min > 0 && text.trim().is_empty();
        let bad_start =
            self.starts_with_letter && !text.chars().next().is_some_and(char::is_alphabetic);
        let prefix = self
            .forbidden_prefixes
            .iter()
            .any(|p| lower.starts_with(&p.to_lowercase()));
        if n < self.min || blank || bad_start || prefix || text.chars().any(char::is_control) {
            return Err((TextProblem::Malformed, explain()));
        }
        Ok(())
    }
}

/// Rules for the texts users give.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Names {
    /// Image names.
    pub image_name: TextRule,
    /// Image descriptions.
    pub description: TextRule,
    /// Image families.
    pub family: TextRule,
    /// Instance names.
    pub instance_name: TextRule,
    /// Snapshot names.
    pub snapshot_name: TextRule,
}

/// Limits on the form of API calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// Ids one call may name.
    pub ids_per_call: usize,
    /// Requests per second one account may make to one action, across every node sharing
    /// the catalog (0: no limit).
    #[serde(default)]
    pub rate_limit_per_second: u32,
    /// Per-action exceptions to `rate_limit_per_second` (0: no limit for that action).
    #[serde(default)]
    pub rate_limits: std::collections::BTreeMap<String, u32>,
}

/// Account limits.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Custom images per account per region.
    pub custom_images_per_region: i64,
    /// Accounts an image may be shared to.
    pub share_accounts_max: i64,
    /// Calls per account per region per day to the limited operations.
    pub daily_operations: i64,
    /// The limited operations, by their Tencent action names (see [`super::Operation`]).
    pub daily_limited_actions: Vec<String>,
    /// Instances per account per region.
    pub instances_per_region: i64,
    /// Snapshots per account per region.
    pub snapshots_per_region: i64,
}

/// Where ExportImages writes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Export {
    /// A directory whose subdirectories are the buckets (`BucketName` names one, which must
    /// exist). Unset: `BucketName` is a bucket of the `[s3]` engine.
    pub dir: Option<String>,
    /// Where export files are assembled before they are uploaded to S3 (default: the
    /// system's temporary directory).
    pub work_dir: Option<String>,
}

/// ImportImage: what an imported image may be (formats, sizes, disks; the guest checks are
/// the `[guest]` section of the `rules` preset), where it may come from (the SSRF
/// allow-list) and how it is fetched.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// Formats accepted for import (detected from content, lower case).
    pub formats: Vec<String>,
    /// Formats the cloud runs natively; accepted formats outside this list are converted
    /// on import (automatically).
    pub native_formats: Vec<String>,
    /// Largest system disk, GiB.
    pub max_system_disk_gib: u64,
    /// Data disks one image may carry besides its system disk (0: system disk only).
    pub max_data_disks: u32,
    /// Largest data disk, GiB.
    pub max_data_disk_gib: u64,
    /// Addresses and CIDR blocks import URLs may reach although they are loopback, private,
    /// link-local or metadata addresses (`["127.0.0.1", "10.0.0.0/8"]`); `ikon serve
    /// --allow-import-from ADDR` adds to it.
    pub allow: Vec<String>,
    /// Largest source file accepted, bytes (checked against Content-Length and while
    /// streaming).
    pub max_bytes: u64,
    /// HTTP attempts per task attempt (each after the first resumes with Range).
    pub attempts: u32,
    /// Seconds to wait for a connection; also the longest pause between two reads.
    pub timeout_secs: u64,
    /// Where downloads and uploads are kept until imported (default: `DATA_DIR/spool` for
    /// `ikon serve`, the system temporary directory otherwise).
    pub spool_dir: Option<std::path::PathBuf>,
}

/// What must be true inside an imported system disk (evaluated by `ikon_guest::rules`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Guest {
    /// Accepted Linux distribution ids (`os-release` `ID`).
    pub linux_distros: Vec<String>,
    /// Accepted Linux word sizes.
    pub linux_bits: Vec<u32>,
    /// Accepted Windows Server versions (e.g. "2012 R2").
    pub windows_versions: Vec<String>,
    /// Accepted Windows word sizes.
    pub windows_bits: Vec<u32>,
    /// Accepted partition tables.
    pub partition_tables: Vec<ikon_guest::TableKind>,
    /// Accepted Linux root filesystems.
    pub linux_root_fs: Vec<ikon_guest::FsType>,
    /// Accepted Windows system filesystems.
    pub windows_root_fs: Vec<ikon_guest::FsType>,
    /// virtio drivers required.
    pub require_virtio: bool,
    /// Distributions that need the user's own subscription (a warning).
    pub byol_distros: Vec<String>,
    /// Network interfaces before a warning.
    pub max_nics: usize,
    /// Warn when IPv6 is enabled.
    pub warn_ipv6: bool,
}

/// A Linux distribution as the APIs name it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LinuxOs {
    /// The name the APIs show (`Platform`, ImportImage's `OsType`), e.g. `CentOS`.
    pub name: String,
    /// The `os-release` `ID`s inspection reports for it.
    pub ids: Vec<String>,
    /// Versions DescribeImportImageOs offers (display only: the `[guest]` checks decide
    /// what is accepted).
    pub versions: Vec<String>,
}

/// The OS tables: names of distributions, and what a request that names no OS or an
/// alias means.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Os {
    /// Linux distributions.
    pub linux: Vec<LinuxOs>,
    /// Name of a distribution not in the table.
    pub other_linux: String,
    /// OS type of an import that names no platform, Linux.
    pub default_linux: String,
    /// OS type of an import that names no platform, Windows.
    pub default_windows: String,
    /// Other spellings of OS types (lower case) and the type each means.
    pub aliases: std::collections::BTreeMap<String, String>,
}

impl Os {
    /// The API name of the distribution inspection calls `id`.
    pub fn linux_name(&self, id: &str) -> &str {
        self.linux
            .iter()
            .find(|l| l.ids.iter().any(|i| i == id))
            .map_or(self.other_linux.as_str(), |l| l.name.as_str())
    }

    /// The entry of distribution id `id`.
    pub fn linux_entry(&self, id: &str) -> Option<&LinuxOs> {
        self.linux.iter().find(|l| l.ids.iter().any(|i| i == id))
    }

    /// The OS type a request means by `platform` (absent: the default for `windows`).
    pub fn os_type(&self, platform: &str, windows: bool) -> String {
        let p = platform.trim();
        if p.is_empty() {
            return if windows {
                self.default_windows.clone()
            } else {
                self.default_linux.clone()
            };
        }
        self.aliases
            .get(&p.to_lowercase())
            .cloned()
            .unwrap_or_else(|| p.to_string())
    }
}

/// Instances: sizes, counts and defaults of RunInstances.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Instances {
    /// Instances one call may create.
    pub max_per_call: u32,
    /// Data disks per instance.
    pub max_data_disks: usize,
    /// Largest disk, GiB.
    pub max_disk_gib: u64,
    /// System disk size when none is asked for, GiB (or the image's size when larger).
    pub default_system_disk_gib: u64,
    /// Disk type when none is asked for.
    pub default_disk_type: String,
    /// Instance type when none is asked for.
    pub default_instance_type: String,
}

/// An instance type offered in every region (what images can run on).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InstanceType {
    /// Type id, e.g. `ecs.g7.large` or `S5.MEDIUM4`.
    pub id: String,
    /// Family, e.g. `ecs.g7`.
    pub family: String,
    /// vCPUs.
    pub cpus: u32,
    /// Memory, MiB.
    pub memory_mib: u32,
    /// CPU architecture: `x86_64` or `arm64`.
    #[serde(default = "x86_64")]
    pub architecture: String,
}

fn x86_64() -> String {
    "x86_64".into()
}

/// Prices (in `currency` units; kept internally in millionths).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// Currency code shown in reports.
    pub currency: String,
    /// Licence fee per instance-hour of a Windows public image in `license_regions`.
    pub windows_license_per_hour: f64,
    /// Regions where public Windows images carry the licence fee (North America).
    pub license_regions: Vec<String>,
    /// Custom-image storage per GiB-month of unique chunks.
    pub storage_per_gib_month: f64,
    /// Highest marketplace price per instance-hour a provider may set.
    pub max_market_price_per_hour: f64,
    /// Seconds between storage samples taken by `ikon serve`.
    pub storage_sample_secs: u64,
}

/// The hygiene scan: the severity of each finding id (`ikon img scan`, marketplace
/// submissions). `block` refuses a marketplace listing; `warn` is shown to the reviewer and
/// the image's owner; `info` is only reported. Ids not named keep the scan's default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScanPolicy {
    /// Severity per finding id (see `ikon_guest::scan::CHECKS`).
    #[serde(default)]
    pub severities: std::collections::BTreeMap<String, ikon_guest::scan::Severity>,
}
