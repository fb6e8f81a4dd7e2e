//! Service configuration (TOML): regions with their zones and storage, the S3 engine,
//! export destinations, limits and import rules. Every field has a default; the defaults
//! are the Tencent preset of DESIGN.md §1.

use serde::{Deserialize, Serialize};
use std::path::Path;

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
}

fn available() -> String {
    "AVAILABLE".into()
}

fn yes() -> bool {
    true
}

/// Account limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Custom images per account per region.
    pub custom_images_per_region: i64,
    /// Accounts an image may be shared to.
    pub share_accounts_max: i64,
    /// Calls per account per region per day to the limited actions.
    pub daily_operations: i64,
    /// The limited actions (dialect-independent operation names).
    pub daily_limited_actions: Vec<String>,
    /// Instances per account per region.
    pub instances_per_region: i64,
    /// Snapshots per account per region.
    pub snapshots_per_region: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            custom_images_per_region: 10,
            share_accounts_max: 50,
            daily_operations: 5,
            daily_limited_actions: ["CreateImage", "ImportImage", "SyncImages", "ExportImages"]
                .map(String::from)
                .to_vec(),
            instances_per_region: 500,
            snapshots_per_region: 500,
        }
    }
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

/// Operating systems accepted by ImportImage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ImportOs {
    /// OS type, e.g. `CentOS`.
    pub os_name: String,
    /// `Linux` or `Windows`.
    pub family: String,
    /// Accepted versions.
    pub versions: Vec<String>,
    /// Accepted architectures.
    pub architectures: Vec<String>,
}

/// Top-level configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Rules preset for import prechecks (`tencent` or `alibaba`).
    pub rules: String,
    /// Regions.
    pub regions: Vec<Region>,
    /// Limits.
    pub limits: Limits,
    /// ImportImage OS list.
    pub import_os: Vec<ImportOs>,
    /// Chunk size of the local chunk store in bytes.
    pub chunk_size: u32,
    /// How to reach the S3 engine (`s3://` region stores, export buckets); unset fields
    /// come from the `AWS_*` environment variables.
    pub s3: ikon_store::S3Options,
    /// ExportImages destinations.
    pub export: Export,
    /// Prices.
    pub pricing: Pricing,
}

/// Prices (in `currency` units; kept internally in millionths).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
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

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            currency: "USD".into(),
            windows_license_per_hour: 0.046,
            license_regions: vec!["na-siliconvalley".into(), "na-ashburn".into()],
            storage_per_gib_month: 0.05,
            max_market_price_per_hour: 100.0,
            storage_sample_secs: 3600,
        }
    }
}

fn zone(name: &str, display: &str, id: &str) -> Zone {
    Zone {
        name: name.into(),
        display_name: display.into(),
        zone_id: id.into(),
        state: available(),
    }
}

fn region(name: &str, display: &str, zones: Vec<Zone>, copy: bool) -> Region {
    Region {
        name: name.into(),
        display_name: display.into(),
        state: available(),
        zones,
        store: None,
        copy_allowed: copy,
    }
}

fn os(name: &str, family: &str, versions: &[&str], arch: &[&str]) -> ImportOs {
    ImportOs {
        os_name: name.into(),
        family: family.into(),
        versions: versions.iter().map(|s| s.to_string()).collect(),
        architectures: arch.iter().map(|s| s.to_string()).collect(),
    }
}

impl Default for Config {
    fn default() -> Self {
        let both = ["x86_64", "i386"];
        Config {
            rules: "tencent".into(),
            regions: vec![
                region(
                    "ap-guangzhou",
                    "South China (Guangzhou)",
                    vec![
                        zone("ap-guangzhou-3", "Guangzhou Zone 3", "100003"),
                        zone("ap-guangzhou-4", "Guangzhou Zone 4", "100004"),
                        zone("ap-guangzhou-6", "Guangzhou Zone 6", "100006"),
                        zone("ap-guangzhou-7", "Guangzhou Zone 7", "100007"),
                    ],
                    true,
                ),
                region(
                    "ap-beijing",
                    "North China (Beijing)",
                    (3..=7)
                        .map(|n| {
                            zone(
                                &format!("ap-beijing-{n}"),
                                &format!("Beijing Zone {n}"),
                                &format!("80000{n}"),
                            )
                        })
                        .collect(),
                    true,
                ),
                region(
                    "ap-shanghai",
                    "East China (Shanghai)",
                    (2..=5)
                        .map(|n| {
                            zone(
                                &format!("ap-shanghai-{n}"),
                                &format!("Shanghai Zone {n}"),
                                &format!("20000{n}"),
                            )
                        })
                        .collect(),
                    true,
                ),
                region(
                    "ap-hongkong",
                    "Hong Kong, Macau and Taiwan (China)",
                    vec![
                        zone("ap-hongkong-2", "Hong Kong Zone 2", "300002"),
                        zone("ap-hongkong-3", "Hong Kong Zone 3", "300003"),
                    ],
                    true,
                ),
                region(
                    "na-siliconvalley",
                    "West US (Silicon Valley)",
                    vec![
                        zone("na-siliconvalley-1", "Silicon Valley Zone 1", "150001"),
                        zone("na-siliconvalley-2", "Silicon Valley Zone 2", "150002"),
                    ],
                    false,
                ),
                region(
                    "na-ashburn",
                    "East US (Virginia)",
                    vec![
                        zone("na-ashburn-1", "Virginia Zone 1", "220001"),
                        zone("na-ashburn-2", "Virginia Zone 2", "220002"),
                    ],
                    false,
                ),
            ],
            limits: Limits::default(),
            import_os: vec![
                os("CentOS", "Linux", &["8", "7", "6"], &both),
                os("Redhat", "Linux", &["8", "7", "6"], &both),
                os(
                    "Ubuntu",
                    "Linux",
                    &["22.04", "20.04", "18.04", "16.04"],
                    &both,
                ),
                os("Debian", "Linux", &["12", "11", "10", "9"], &both),
                os("CoreOS", "Linux", &["stable"], &["x86_64"]),
                os("OpenSUSE", "Linux", &["15", "42.3"], &both),
                os("SUSE", "Linux", &["15", "12"], &both),
                os("Windows Server 2008", "Windows", &["R2"], &["x86_64"]),
                os(
                    "Windows Server 2012",
                    "Windows",
                    &["R2", "Standard"],
                    &["x86_64"],
                ),
            ],
            chunk_size: 1 << 20,
            s3: ikon_store::S3Options::default(),
            export: Export::default(),
            pricing: Pricing::default(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration {path}: {msg}")]
pub struct ConfigError {
    /// File.
    pub path: String,
    /// What is wrong.
    pub msg: String,
}

impl Config {
    /// Reads a TOML file; absent keys keep their defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |msg: String| ConfigError {
            path: path.display().to_string(),
            msg,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let cfg: Config = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        cfg.validate().map_err(err)?;
        Ok(cfg)
    }

    /// Checks internal consistency.
    pub fn validate(&self) -> Result<(), String> {
        if self.regions.is_empty() {
            return Err("at least one region is needed".into());
        }
        let mut seen = std::collections::HashSet::new();
        for r in &self.regions {
            if !seen.insert(r.name.as_str()) {
                return Err(format!("region {} listed twice", r.name));
            }
            if let Some(st) = &r.store {
                ikon_store::Location::parse(st)
                    .map_err(|e| format!("region {}: {}", r.name, e.context))?;
            }
            for z in &r.zones {
                if !z.name.starts_with(&format!("{}-", r.name)) {
                    return Err(format!(
                        "zone {} does not belong to region {}",
                        z.name, r.name
                    ));
                }
            }
        }
        let l = &self.limits;
        if l.custom_images_per_region < 0 || l.share_accounts_max < 0 || l.daily_operations < 0 {
            return Err("limits must not be negative".into());
        }
        if !self.chunk_size.is_power_of_two() || !(1 << 16..=1 << 23).contains(&self.chunk_size) {
            return Err(format!(
                "chunk_size {} must be a power of two in 64 KiB..8 MiB",
                self.chunk_size
            ));
        }
        let p = &self.pricing;
        for (name, v) in [
            ("windows_license_per_hour", p.windows_license_per_hour),
            ("storage_per_gib_month", p.storage_per_gib_month),
            ("max_market_price_per_hour", p.max_market_price_per_hour),
        ] {
            if !(0.0..=1e6).contains(&v) {
                return Err(format!("pricing.{name} = {v}: expected 0 to 1000000"));
            }
        }
        if !matches!(self.rules.as_str(), "tencent" | "alibaba") {
            return Err(format!(
                "rules {:?}: expected tencent or alibaba",
                self.rules
            ));
        }
        Ok(())
    }

    /// A region by name.
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }
}
