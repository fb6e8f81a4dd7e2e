//! Service configuration (TOML): regions with their zones and storage, the S3 engine,
//! export destinations, limits and import rules. Every field has a default taken from a
//! preset (DESIGN.md §1): `tencent` (the default) or `alibaba`, chosen with `preset = "…"` in
//! the file or `--preset` on the command line; keys given in the file override the preset's
//! (tables merge key by key, lists and values replace).

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

/// ImportImage: what an imported image may be (formats, sizes, disks; the guest checks
/// themselves are the `rules` preset of `ikon_guest::rules`), where it may come from (the
/// SSRF allow-list) and how it is fetched.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ImportConfig {
    /// Formats accepted for import (detected from content, lower case).
    pub formats: Vec<String>,
    /// Formats the cloud runs natively; accepted formats outside this list are converted
    /// on import (automatically).
    pub native_formats: Vec<String>,
    /// Largest system disk, GiB.
    pub max_system_disk_gib: u64,
    /// Data disks one image may carry besides its system disk (0: system-disk images only).
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

impl Default for ImportConfig {
    fn default() -> Self {
        Config::tencent().import
    }
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

fn itype(id: &str, cpus: u32, memory_mib: u32, arch: &str) -> InstanceType {
    let family = match id.rsplit_once('.') {
        Some((f, _)) => f.to_string(),
        None => id.to_string(),
    };
    InstanceType {
        id: id.into(),
        family,
        cpus,
        memory_mib,
        architecture: arch.into(),
    }
}

/// The preset names.
pub const PRESETS: &[&str] = &["tencent", "alibaba"];

/// Top-level configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The preset the defaults came from (`tencent` or `alibaba`).
    pub preset: String,
    /// Rules preset for import prechecks (`tencent` or `alibaba`; the preset's by default).
    pub rules: String,
    /// What an imported image may be.
    pub import: ImportConfig,
    /// Regions.
    pub regions: Vec<Region>,
    /// Limits.
    pub limits: Limits,
    /// Chunk size of the local chunk store in bytes.
    pub chunk_size: u32,
    /// How to reach the S3 engine (`s3://` region stores, export buckets); unset fields
    /// come from the `AWS_*` environment variables.
    pub s3: ikon_store::S3Options,
    /// ExportImages destinations.
    pub export: Export,
    /// Instance types (what an image can run on; see `Service::instance_types_for_image`).
    pub instance_types: Vec<InstanceType>,
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

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn lettered(region: &str, display: &str, letters: &str, base: u32) -> Vec<Zone> {
    letters
        .chars()
        .zip(1u32..)
        .map(|(c, n)| {
            zone(
                &format!("{region}-{c}"),
                &format!("{display} Zone {}", c.to_ascii_uppercase()),
                &(base + n).to_string(),
            )
        })
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Config::tencent()
    }
}

impl Config {
    /// The preset called `name`.
    pub fn preset(name: &str) -> Option<Config> {
        match name {
            "tencent" => Some(Config::tencent()),
            "alibaba" => Some(Config::alibaba()),
            _ => None,
        }
    }

    /// The Alibaba Cloud preset: Alibaba region and zone ids; VHD and RAW are the runtime
    /// formats (QCOW2 and VMDK are converted on import); an image may carry a system disk
    /// (≤ 500 GiB) and up to 16 data disks (≤ 2048 GiB each); 100 custom images per region;
    /// no daily cap on image operations.
    pub fn alibaba() -> Config {
        let mut c = Config::tencent();
        c.preset = "alibaba".into();
        c.rules = "alibaba".into();
        c.import.formats = strings(&["raw", "vhd", "qcow2", "vmdk"]);
        c.import.native_formats = strings(&["raw", "vhd"]);
        c.import.max_system_disk_gib = 500;
        c.import.max_data_disks = 16;
        c.import.max_data_disk_gib = 2048;
        c.limits = Limits {
            custom_images_per_region: 100,
            share_accounts_max: 50,
            daily_operations: 5,
            daily_limited_actions: vec![],
            ..Limits::default()
        };
        // Alibaba's North-American regions carry the Windows licence fee.
        c.pricing.license_regions = vec!["us-west-1".into(), "us-east-1".into()];
        c.instance_types = vec![
            itype("ecs.t5-lc2m1.nano", 1, 512, "x86_64"),
            itype("ecs.t6-c1m1.large", 2, 2048, "x86_64"),
            itype("ecs.c7.large", 2, 4096, "x86_64"),
            itype("ecs.g7.large", 2, 8192, "x86_64"),
            itype("ecs.g7.xlarge", 4, 16_384, "x86_64"),
            itype("ecs.r7.large", 2, 16_384, "x86_64"),
            itype("ecs.g8y.large", 2, 8192, "arm64"),
        ];
        let r = |name: &str, display: &str, letters: &str, base: u32| {
            region(name, display, lettered(name, display, letters, base), true)
        };
        c.regions = vec![
            r("cn-hangzhou", "China (Hangzhou)", "bghijk", 330_000),
            r("cn-shanghai", "China (Shanghai)", "befglmn", 310_000),
            r("cn-beijing", "China (Beijing)", "acdefghijkl", 110_000),
            r("cn-shenzhen", "China (Shenzhen)", "abcdef", 440_000),
            r("cn-hongkong", "China (Hong Kong)", "bcd", 810_000),
            r("ap-southeast-1", "Singapore", "abc", 650_000),
            r("us-west-1", "US (Silicon Valley)", "ab", 140_000),
            r("us-east-1", "US (Virginia)", "ab", 150_000),
            r("eu-central-1", "Germany (Frankfurt)", "ab", 490_000),
        ];
        c
    }

    /// The Tencent Cloud preset (the default).
    pub fn tencent() -> Config {
        Config {
            preset: "tencent".into(),
            rules: "tencent".into(),
            import: ImportConfig {
                formats: strings(&["raw", "vhd", "qcow2", "vmdk"]),
                native_formats: strings(&["raw", "vhd", "qcow2", "vmdk"]),
                max_system_disk_gib: 50,
                max_data_disks: 0,
                max_data_disk_gib: 0,
                allow: Vec::new(),
                max_bytes: 64 << 30,
                attempts: 5,
                timeout_secs: 30,
                spool_dir: None,
            },
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
            chunk_size: 1 << 20,
            s3: ikon_store::S3Options::default(),
            export: Export::default(),
            instance_types: vec![
                itype("S5.SMALL1", 1, 1024, "x86_64"),
                itype("S5.MEDIUM2", 2, 2048, "x86_64"),
                itype("S5.MEDIUM4", 2, 4096, "x86_64"),
                itype("S5.LARGE8", 4, 8192, "x86_64"),
                itype("SA2.MEDIUM4", 2, 4096, "x86_64"),
                itype("SR1.MEDIUM4", 2, 4096, "arm64"),
            ],
            pricing: Pricing::default(),
        }
    }
}

/// Merges `over` into `base`: tables key by key (recursively), anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
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
    /// Reads a TOML file; absent keys keep the defaults of the file's `preset`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(Some(path), None)
    }

    /// The configuration of an optional TOML file over a preset: `preset` when given, else
    /// the file's `preset` key, else `tencent`.
    pub fn load_with(path: Option<&Path>, preset: Option<&str>) -> Result<Config, ConfigError> {
        let err = |msg: String| ConfigError {
            path: path.map_or_else(|| "(none)".into(), |p| p.display().to_string()),
            msg,
        };
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| err(e.to_string()))?,
            None => String::new(),
        };
        Config::from_toml(&text, preset).map_err(err)
    }

    /// The configuration of TOML `text` over a preset (see [`Config::load_with`]).
    pub fn from_toml(text: &str, preset: Option<&str>) -> Result<Config, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let name = match (preset, table.get("preset")) {
            (Some(p), _) => p.to_string(),
            (None, Some(toml::Value::String(p))) => p.clone(),
            (None, Some(_)) => return Err("preset must be a string".into()),
            (None, None) => "tencent".into(),
        };
        let base = Config::preset(&name)
            .ok_or_else(|| format!("preset {name:?}: expected one of {}", PRESETS.join(", ")))?;
        let mut merged = toml::Table::try_from(&base).map_err(|e| e.to_string())?;
        merge(&mut merged, table);
        merged.insert("preset".into(), toml::Value::String(name));
        let cfg: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())?;
        cfg.validate()?;
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
        crate::import::Guard::new(&self.import.allow).map_err(|e| format!("import.allow: {e}"))?;
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
        if !PRESETS.contains(&self.preset.as_str()) {
            return Err(format!(
                "preset {:?}: expected tencent or alibaba",
                self.preset
            ));
        }
        if !PRESETS.contains(&self.rules.as_str()) {
            return Err(format!(
                "rules {:?}: expected tencent or alibaba",
                self.rules
            ));
        }
        let i = &self.import;
        if let Some(f) = i.native_formats.iter().find(|f| !i.formats.contains(f)) {
            return Err(format!(
                "import.native_formats: {f:?} is not in import.formats"
            ));
        }
        let mut types = std::collections::HashSet::new();
        for t in &self.instance_types {
            if !types.insert(t.id.as_str()) {
                return Err(format!("instance type {} listed twice", t.id));
            }
            if t.cpus == 0
                || t.memory_mib == 0
                || !["x86_64", "arm64"].contains(&t.architecture.as_str())
            {
                return Err(format!(
                    "instance type {}: cpus and memory_mib must be positive, architecture x86_64 or arm64",
                    t.id
                ));
            }
        }
        if i.max_system_disk_gib == 0 {
            return Err("import.max_system_disk_gib must be positive".into());
        }
        if i.max_data_disks > 0 && i.max_data_disk_gib == 0 {
            return Err(
                "import.max_data_disk_gib must be positive when data disks are allowed".into(),
            );
        }
        Ok(())
    }

    /// The guest checks an import must pass: the `rules` preset with this configuration's
    /// runtime formats (others converted) and system-disk size limit.
    pub fn guest_rules(&self) -> ikon_guest::rules::RulesConfig {
        let mut r = ikon_guest::rules::RulesConfig::preset(&self.rules).unwrap_or_default();
        r.formats = self.import.native_formats.clone();
        r.formats_converted = self
            .import
            .formats
            .iter()
            .any(|f| !self.import.native_formats.contains(f));
        r.max_virtual_size = self.import.max_system_disk_gib.saturating_mul(1 << 30);
        r
    }

    /// A region by name.
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_differ_where_the_clouds_do() {
        for name in PRESETS {
            let c = Config::preset(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(c.validate(), Ok(()), "{name}");
            assert_eq!((c.preset.as_str(), c.rules.as_str()), (*name, *name));
        }
        assert!(Config::preset("aws").is_none());
        let (t, a) = (Config::tencent(), Config::alibaba());
        assert_eq!(Config::default(), t);
        assert!(t.region("ap-guangzhou").is_some() && t.region("cn-hangzhou").is_none());
        for r in [
            "cn-hangzhou",
            "cn-shanghai",
            "cn-beijing",
            "cn-shenzhen",
            "cn-hongkong",
        ] {
            assert!(a.region(r).is_some(), "{r}");
        }
        for r in ["ap-southeast-1", "us-west-1"] {
            assert!(a.region(r).is_some(), "{r}");
        }
        let hz = a
            .region("cn-hangzhou")
            .map(|r| r.zones.clone())
            .unwrap_or_default();
        assert!(hz.iter().any(|z| z.name == "cn-hangzhou-h"));
        assert!(a.region("ap-guangzhou").is_none());
        assert_eq!(a.import.native_formats, ["raw", "vhd"]);
        assert_eq!(a.pricing.license_regions, ["us-west-1", "us-east-1"]);
        assert!(a
            .pricing
            .license_regions
            .iter()
            .all(|r| a.region(r).is_some()));
        assert!(a.import.formats.contains(&"qcow2".to_string()));
        assert_eq!((t.import.max_data_disks, a.import.max_data_disks), (0, 16));
        let g = a.guest_rules();
        assert_eq!((g.name.as_str(), g.formats_converted), ("alibaba", true));
        assert_eq!(g.formats, ["raw", "vhd"]);
        assert_eq!(g.max_virtual_size, 500 << 30);
        let g = t.guest_rules();
        assert_eq!((g.name.as_str(), g.formats_converted), ("tencent", false));
        assert_eq!(g.max_virtual_size, 50 << 30);
    }

    #[test]
    fn files_override_their_preset_key_by_key() {
        let ok = |text: &str, preset: Option<&str>| {
            Config::from_toml(text, preset).unwrap_or_else(|e| panic!("{text}: {e}"))
        };
        assert_eq!(ok("", None), Config::tencent());
        assert_eq!(ok("", Some("alibaba")), Config::alibaba());
        let c = ok(
            "preset = \"alibaba\"\n[limits]\nshare_accounts_max = 2\n[import]\nmax_data_disks = 4\n",
            None,
        );
        assert_eq!(c.preset, "alibaba");
        assert_eq!(c.limits.share_accounts_max, 2);
        // Keys the file leaves out keep the preset's values.
        assert_eq!(c.limits.custom_images_per_region, 100);
        assert_eq!(c.import.max_data_disks, 4);
        assert_eq!(c.import.max_system_disk_gib, 500);
        assert_eq!(c.regions, Config::alibaba().regions);
        // The command line wins over the file.
        let c = ok("preset = \"alibaba\"\n", Some("tencent"));
        assert_eq!(c, Config::tencent());
        // Lists replace.
        let c = ok(
            "preset = \"alibaba\"\n[[regions]]\nname = \"cn-qingdao\"\nzones = [{ name = \"cn-qingdao-b\" }]\n",
            None,
        );
        assert_eq!(c.regions.len(), 1);
        assert_eq!(c.rules, "alibaba");
        for bad in [
            "preset = \"aws\"",
            "preset = 3",
            "[import]\nnative_formats = [\"vdi\"]",
            "[import]\nmax_system_disk_gib = 0",
            "[limits]\nno_such_limit = 1",
            "rules = \"gcp\"",
        ] {
            assert!(Config::from_toml(bad, None).is_err(), "{bad}");
        }
        assert!(Config::from_toml("", Some("aws")).is_err());
    }
}
