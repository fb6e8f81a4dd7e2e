//! The policy: every limit, default, table and price of the service, as data. Each preset
//! (`tencent`, the default, and `alibaba`, after the two clouds' documents) is a TOML
//! document embedded in the binary (`tencent.toml`, `alibaba.toml` beside this file); an
//! operator's file (`--config`) merges onto the preset it names with `preset = "…"` or the
//! command line's `--preset` (tables merge key by key, lists and values replace). `ikon serve`, `ikon admin` and the
//! offline `ikon img precheck` all read the policy through [`Config::load_with`], so an
//! image gets the same verdict offline and on import.

mod operation;
mod sections;

pub use operation::Operation;
pub use sections::{
    Api, Export, Guest, ImportConfig, InstanceType, Instances, Limits, LinuxOs, Names, Os, Pricing,
    Region, ScanPolicy, TextProblem, TextRule, Zone,
};

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The preset names.
pub const PRESETS: &[&str] = &["tencent", "alibaba"];

/// The preset documents, embedded in the binary.
const PRESET_DOCUMENTS: &[(&str, &str)] = &[
    ("tencent", include_str!("tencent.toml")),
    ("alibaba", include_str!("alibaba.toml")),
];

/// The policy a service runs under.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The preset the defaults came from (`tencent` or `alibaba`).
    pub preset: String,
    /// Which preset's `[guest]` checks imports are held to (`tencent` or `alibaba`).
    pub rules: String,
    /// Chunk size of the local chunk store in bytes.
    pub chunk_size: u32,
    /// Rules for names and descriptions.
    pub names: Names,
    /// Limits on the form of calls.
    pub api: Api,
    /// Account limits.
    pub limits: Limits,
    /// What an imported image may be.
    pub import: ImportConfig,
    /// What must be true inside an imported system disk.
    pub guest: Guest,
    /// The OS tables (distribution names, defaults, aliases).
    pub os: Os,
    /// RunInstances sizes, counts and defaults.
    pub instances: Instances,
    /// Instance types (what an image can run on; see `Service::instance_types_for_image`).
    pub instance_types: Vec<InstanceType>,
    /// Prices.
    pub pricing: Pricing,
    /// Regions.
    pub regions: Vec<Region>,
    /// How to reach the S3 engine (`s3://` region stores, export buckets); unset fields
    /// come from the `AWS_*` environment variables.
    #[serde(default)]
    pub s3: ikon_store::S3Options,
    /// ExportImages destinations.
    #[serde(default)]
    pub export: Export,
    /// Severities of the hygiene scan's findings.
    #[serde(default)]
    pub scan: ScanPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Config::tencent()
    }
}

impl Config {
    /// The preset called `name`, as its embedded document says.
    pub fn preset(name: &str) -> Option<Config> {
        Config::from_toml("", Some(name)).ok()
    }

    /// The embedded document of preset `name`.
    pub fn preset_document(name: &str) -> Option<&'static str> {
        PRESET_DOCUMENTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
    }

    /// The Alibaba Cloud preset (see `alibaba.toml`).
    pub fn alibaba() -> Config {
        Config::embedded("alibaba")
    }

    /// The Tencent Cloud preset, the default (see `tencent.toml`).
    pub fn tencent() -> Config {
        Config::embedded("tencent")
    }

    fn embedded(name: &str) -> Config {
        match Config::from_toml("", Some(name)) {
            Ok(c) => c,
            // The embedded documents are part of the program; a unit test parses both.
            Err(e) => panic!("the embedded {name} preset is invalid: {e}"),
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

/// The embedded document of preset `name` as a table.
fn preset_table(name: &str) -> Result<toml::Table, String> {
    let doc = Config::preset_document(name)
        .ok_or_else(|| format!("preset {name:?}: expected one of {}", PRESETS.join(", ")))?;
    doc.parse()
        .map_err(|e: toml::de::Error| format!("the embedded {name} preset: {e}"))
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

    /// The configuration of TOML `text` over a preset (see [`Config::load_with`]). When the
    /// text names a `rules` preset other than its own, the guest checks start from that
    /// preset's `[guest]` section.
    pub fn from_toml(text: &str, preset: Option<&str>) -> Result<Config, String> {
        let file: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let name = match (preset, file.get("preset")) {
            (Some(p), _) => p.to_string(),
            (None, Some(toml::Value::String(p))) => p.clone(),
            (None, Some(_)) => return Err("preset must be a string".into()),
            (None, None) => "tencent".into(),
        };
        let mut merged = preset_table(&name)?;
        match file.get("rules") {
            None => {}
            Some(toml::Value::String(r)) if *r == name => {}
            Some(toml::Value::String(r)) => {
                let mut rules = preset_table(r)?;
                for section in ["guest", "scan"] {
                    if let Some(g) = rules.remove(section) {
                        merged.insert(section.into(), g);
                    }
                }
            }
            Some(_) => return Err("rules must be a string".into()),
        }
        merge(&mut merged, file);
        merged.insert("preset".into(), toml::Value::String(name));
        let cfg: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The operations the daily limit counts (validated when the policy was read).
    pub fn daily_limited(&self) -> Vec<Operation> {
        self.limits
            .daily_limited_actions
            .iter()
            .filter_map(|a| Operation::parse(a).ok())
            .collect()
    }

    /// The policy as TOML (what `ikon admin policy show` prints).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| e.to_string())
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
        if let Some(id) = self
            .scan
            .severities
            .keys()
            .find(|id| ikon_guest::scan::check(id).is_none())
        {
            return Err(format!("scan: unknown finding id {id:?}"));
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
        ikon_transfer::guard::Guard::new(&self.import.allow)
            .map_err(|e| format!("import.allow: {e}"))?;
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
        for a in &self.limits.daily_limited_actions {
            Operation::parse(a).map_err(|e| format!("limits.daily_limited_actions: {e}"))?;
        }
        for (what, t) in [
            ("image_name", &self.names.image_name),
            ("description", &self.names.description),
            ("family", &self.names.family),
            ("instance_name", &self.names.instance_name),
            ("snapshot_name", &self.names.snapshot_name),
        ] {
            if t.min > t.max || t.max == 0 {
                return Err(format!(
                    "names.{what}: min must not exceed max, max must be positive"
                ));
            }
        }
        if self.api.ids_per_call == 0 {
            return Err("api.ids_per_call must be positive".into());
        }
        let n = &self.instances;
        if n.max_per_call == 0 || n.max_disk_gib == 0 || n.default_system_disk_gib == 0 {
            return Err(
                "instances: max_per_call, max_disk_gib and default_system_disk_gib must be positive"
                    .into(),
            );
        }
        if self.instance_type(&n.default_instance_type).is_none() {
            return Err(format!(
                "instances.default_instance_type {:?} is not one of instance_types",
                n.default_instance_type
            ));
        }
        for r in &self.regions {
            if let Some(z) = &r.default_zone {
                if !r.zones.iter().any(|x| &x.name == z) {
                    return Err(format!(
                        "region {}: default_zone {z} is not one of its zones",
                        r.name
                    ));
                }
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

    /// The guest checks an import must pass: the `[guest]` section with this policy's
    /// runtime formats (others converted) and system-disk size limit.
    pub fn guest_rules(&self) -> ikon_guest::rules::RulesConfig {
        let g = &self.guest;
        ikon_guest::rules::RulesConfig {
            name: self.rules.clone(),
            formats: self.import.native_formats.clone(),
            formats_converted: self
                .import
                .formats
                .iter()
                .any(|f| !self.import.native_formats.contains(f)),
            linux_distros: g.linux_distros.clone(),
            linux_bits: g.linux_bits.clone(),
            windows_versions: g.windows_versions.clone(),
            windows_bits: g.windows_bits.clone(),
            partition_tables: g.partition_tables.clone(),
            linux_root_fs: g.linux_root_fs.clone(),
            windows_root_fs: g.windows_root_fs.clone(),
            max_virtual_size: self.import.max_system_disk_gib.saturating_mul(1 << 30),
            require_virtio: g.require_virtio,
            byol_distros: g.byol_distros.clone(),
            max_nics: g.max_nics,
            warn_ipv6: g.warn_ipv6,
        }
    }

    /// The hygiene scan's configuration under this policy.
    pub fn scan_rules(&self) -> ikon_guest::scan::ScanConfig {
        ikon_guest::scan::ScanConfig {
            name: self.rules.clone(),
            severities: self.scan.severities.clone(),
        }
    }

    /// An instance type by id.
    pub fn instance_type(&self, id: &str) -> Option<&InstanceType> {
        self.instance_types.iter().find(|t| t.id == id)
    }

    /// A region by name.
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests;
