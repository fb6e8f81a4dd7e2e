//! ImportImage: a custom image from a disk-image file at an `http(s)://` URL, an
//! `s3://bucket/key` or an upload (`upload://upl-…`, sent with `ikon image import`).
//!
//! The call checks the request (OS type, version and architecture against the list the
//! rules accept, the URL against the SSRF guard), creates the image IMPORTING (which
//! reserves the quota unit) and enqueues a durable `import` task. The task brings the file
//! into a spool file ([`source`]), opens it with the disk engine (format from content,
//! external references refused), inspects the guest, evaluates the configured preset's
//! rules, stores the disk as chunks, records the inspected OS, platform and architecture,
//! and the runner turns the image NORMAL — or IMPORTFAILED with every failed rule in the
//! state reason. `Force` skips the guest rules; safety rules (the file is a readable disk
//! image, it refers to nothing outside itself, it fits the size limit) are never skipped.

pub use ikon_transfer::guard;
mod stored;
mod task;

pub use ikon_transfer::fetch::{
    check_url, fetch_http, precheck, FetchError, FetchOptions, Fetched,
};
pub use ikon_transfer::guard::{Cidr, Guard};
pub use ikon_transfer::source::{Buckets, HttpSource, ObjectSource, Source, SourceUrl};
pub use task::ImportHandler;

use crate::images::state;
use crate::{ids, Caller, Error, ErrorKind, Result, Service};
use ikon_catalog::{Image, TaskStart};
use ikon_guest::rules::RulesConfig;
use std::path::PathBuf;
use std::sync::Arc;

/// Task kind of an import.
pub const IMPORT_KIND: &str = "import";
/// Attempts of an import task (each resumes the spool file).
const IMPORT_ATTEMPTS: i64 = 3;

/// One operating system ImportImage accepts (DescribeImportImageOs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportOs {
    /// OS type as ImportImage's `OsType` takes it, e.g. `CentOS`.
    pub os_name: String,
    /// `Linux` or `Windows`.
    pub family: String,
    /// Versions (`OsVersion`).
    pub versions: Vec<String>,
    /// Architectures (`x86_64`, `i386`).
    pub architectures: Vec<String>,
}

fn arch_name(bits: u32) -> &'static str {
    if bits == 32 {
        "i386"
    } else {
        "x86_64"
    }
}

/// The OS list the guest checks `r` accept: Linux distributions (named and versioned by the
/// policy's OS table `os`) and Windows Server versions, with the word sizes the rules allow.
pub fn import_os_list(r: &RulesConfig, os: &crate::policy::Os) -> Vec<ImportOs> {
    let mut out: Vec<ImportOs> = Vec::new();
    let linux_arch: Vec<String> = r
        .linux_bits
        .iter()
        .rev()
        .map(|b| arch_name(*b).to_string())
        .collect();
    for d in &r.linux_distros {
        let name = os.linux_name(d).to_string();
        let versions: Vec<String> = os
            .linux_entry(d)
            .map(|l| l.versions.clone())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["-".to_string()]);
        match out.iter_mut().find(|o| o.os_name == name) {
            Some(o) => {
                for v in versions {
                    if !o.versions.contains(&v) {
                        o.versions.push(v);
                    }
                }
            }
            None => out.push(ImportOs {
                os_name: name,
                family: "Linux".into(),
                versions,
                architectures: linux_arch.clone(),
            }),
        }
    }
    let win_arch: Vec<String> = r
        .windows_bits
        .iter()
        .map(|b| arch_name(*b).to_string())
        .collect();
    for v in &r.windows_versions {
        let year = v.split_whitespace().next().unwrap_or(v);
        let name = format!("Windows Server {year}");
        match out.iter_mut().find(|o| o.os_name == name) {
            Some(o) => o.versions.push(v.clone()),
            None => out.push(ImportOs {
                os_name: name,
                family: "Windows".into(),
                versions: vec![v.clone()],
                architectures: win_arch.clone(),
            }),
        }
    }
    out
}

/// An ImportImage request (already parsed by the dialect).
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// Image name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `http(s)://…`, `s3://BUCKET/KEY` or `upload://UPLOAD_ID`.
    pub url: String,
    /// Declared OS type (one of [`import_os_list`]).
    pub os_type: String,
    /// Declared OS version.
    pub os_version: String,
    /// Declared architecture: `x86_64`, `i386` or `arm_64`.
    pub architecture: String,
    /// Skip the guest rules (never the safety rules).
    pub force: bool,
    /// `TencentCloud` (default) or `BYOL`.
    pub license_type: Option<String>,
    /// `Legacy BIOS` (default) or `UEFI`.
    pub boot_mode: Option<String>,
    /// Image family.
    pub family: String,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Only check the request.
    pub dry_run: bool,
    /// Data disks (same URL kinds), imported after the system disk; allowed up to
    /// `import.max_data_disks` of at most `import.max_data_disk_gib` each.
    pub data_disk_urls: Vec<String>,
}

/// What the import task needs (its payload).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Payload {
    url: String,
    #[serde(default)]
    data_urls: Vec<String>,
    force: bool,
    os_type: String,
    architecture: String,
    license_type: String,
}

/// A received upload.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Upload {
    /// `upl-xxxxxxxx`: import it with `ImageUrl = upload://UPLOAD_ID`.
    pub upload_id: String,
    /// Bytes received.
    pub size: u64,
}

fn bad(kind: ErrorKind, msg: impl Into<String>) -> Error {
    Error::new(kind, msg)
}

impl Service {
    /// The bucket `s3://NAME/…` import URLs read from: one registered with
    /// [`Service::register_import_bucket`], else that bucket of the `[s3]` engine when one is
    /// configured (an endpoint in the configuration or `AWS_ENDPOINT_URL`).
    pub(crate) fn import_bucket(&self, name: &str) -> Option<Arc<dyn object_store::ObjectStore>> {
        if let Some(b) = self.buckets().get(name) {
            return Some(b);
        }
        let s3 = &self.config().s3;
        s3.resolved().endpoint.as_ref()?;
        s3.bucket_store(name).ok()
    }

    fn fetch_options(&self) -> FetchOptions {
        let c = &self.config().import;
        FetchOptions {
            guard: self.transfers().import_guard(),
            max_bytes: c.max_bytes,
            attempts: c.attempts,
            timeout: std::time::Duration::from_secs(c.timeout_secs),
            backoff: std::time::Duration::from_millis(500),
        }
    }

    /// Checks an import source URL at call time: its kind, the SSRF guard (HTTP), a
    /// configured bucket (S3) or an existing upload of the caller.
    async fn check_source(&self, caller: &Caller, url: &str) -> Result<()> {
        let source = SourceUrl::parse(url).map_err(|m| bad(ErrorKind::InvalidUrl, m))?;
        match &source {
            SourceUrl::Http(u) => precheck(u, &self.transfers().import_guard())
                .await
                .map_err(|e| bad(ErrorKind::InvalidUrl, e.to_string()))?,
            SourceUrl::S3 { bucket, .. } => {
                if self.import_bucket(bucket).is_none() {
                    return Err(bad(
                        ErrorKind::InvalidUrl,
                        format!("bucket {bucket:?} is not configured on this server"),
                    ));
                }
            }
            SourceUrl::Upload(id) => {
                if !self
                    .transfers()
                    .upload_path(&caller.account_id, id)
                    .is_file()
                {
                    return Err(bad(
                        ErrorKind::InvalidUrl,
                        format!("upload {id} does not exist (uploads are kept until imported)"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl crate::facets::Transfers<'_> {
    /// The guest rules of the configuration: the `rules` preset with its runtime formats
    /// (others converted) and system-disk size limit (`Config::guest_rules`).
    pub fn import_rules(&self) -> RulesConfig {
        self.config().guest_rules()
    }

    /// What ImportImage accepts (DescribeImportImageOs), derived from the rules preset.
    pub fn import_os(&self) -> Vec<ImportOs> {
        import_os_list(&self.import_rules(), &self.config().os)
    }

    /// The OS type an import request means by its platform (the policy's aliases; a request
    /// naming none is taken as the policy's default Linux or Windows type).
    pub fn import_os_type(&self, platform: &str, windows: bool) -> String {
        self.config().os.os_type(platform, windows)
    }

    /// The SSRF guard of this server (configuration plus `--allow-import-from`).
    pub fn import_guard(&self) -> Guard {
        Guard::new(&self.config().import.allow).unwrap_or_default()
    }

    /// Where downloads and uploads wait to be imported.
    pub fn spool_dir(&self) -> PathBuf {
        self.config()
            .import
            .spool_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("ikon-spool"))
    }

    /// Makes `s3://NAME/…` import URLs read from `store`.
    pub fn register_import_bucket(&self, name: &str, store: Arc<dyn object_store::ObjectStore>) {
        self.buckets().register(name, store);
    }

    /// Starts an import (see the module documentation); returns the new image's id (None
    /// on a dry run, which only checks).
    pub async fn import_image(
        &self,
        caller: &Caller,
        req: &ImportRequest,
    ) -> Result<Option<String>> {
        if !req.dry_run {
            self.count_limited(caller, crate::Operation::ImportImage)
                .await?;
        }
        self.check_region(&caller.region)?;
        self.images()
            .check_new_image(&req.name, &req.description, &req.family)?;
        let oses = self.import_os();
        let os = oses
            .iter()
            .find(|o| o.os_name.eq_ignore_ascii_case(req.os_type.trim()))
            .ok_or_else(|| {
                bad(
                    ErrorKind::OsTypeUnsupported,
                    format!(
                        "OsType {:?} is not importable here; accepted: {}",
                        req.os_type,
                        oses.iter()
                            .map(|o| o.os_name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        // An empty version is "not declared" (Alibaba's ImportImage has none): inspection
        // decides, as for every import.
        if !req.os_version.trim().is_empty()
            && !os
                .versions
                .iter()
                .any(|v| v.eq_ignore_ascii_case(req.os_version.trim()))
        {
            return Err(bad(
                ErrorKind::OsVersionUnsupported,
                format!(
                    "OsVersion {:?} is not accepted for {}; accepted: {}",
                    req.os_version,
                    os.os_name,
                    os.versions.join(", ")
                ),
            ));
        }
        let arch = match req.architecture.as_str() {
            "x86_64" => "x86_64",
            "i386" => "i386",
            "arm_64" => "arm",
            other => {
                return Err(bad(
                    ErrorKind::InvalidParameterValue,
                    format!("Architecture {other:?} must be x86_64, i386 or arm_64"),
                ))
            }
        };
        if !os.architectures.iter().any(|a| a == arch) {
            return Err(bad(
                ErrorKind::InvalidParameterValue,
                format!(
                    "Architecture {} is not accepted for {} ({})",
                    req.architecture,
                    os.os_name,
                    os.architectures.join(", ")
                ),
            ));
        }
        let license = match req.license_type.as_deref().unwrap_or("TencentCloud") {
            l @ ("TencentCloud" | "BYOL") => l.to_string(),
            other => {
                return Err(bad(
                    ErrorKind::InvalidLicenseType,
                    format!("LicenseType {other:?} must be TencentCloud or BYOL"),
                ))
            }
        };
        match req.boot_mode.as_deref() {
            None | Some("Legacy BIOS" | "UEFI") => {}
            Some(other) => {
                return Err(bad(
                    ErrorKind::InvalidBootMode,
                    format!("BootMode {other:?} must be \"Legacy BIOS\" or \"UEFI\""),
                ))
            }
        }
        self.check_source(caller, &req.url).await?;
        let limits = &self.config().import;
        if req.data_disk_urls.len() > usize::try_from(limits.max_data_disks).unwrap_or(0) {
            return Err(bad(
                ErrorKind::InvalidParameterValue,
                format!(
                    "{} data disks given; images imported here carry at most {} data disks",
                    req.data_disk_urls.len(),
                    limits.max_data_disks
                ),
            ));
        }
        for u in &req.data_disk_urls {
            self.check_source(caller, u).await?;
        }
        if req.dry_run {
            return Ok(None);
        }
        let now = ids::now();
        let img = Image {
            image_id: ids::new_id("img"),
            kind: "PRIVATE".into(),
            owner: caller.account_id.clone(),
            region: caller.region.clone(),
            name: req.name.clone(),
            description: req.description.clone(),
            os_name: format!("{} {}", os.os_name, req.os_version.trim()),
            os_type: os.family.clone(),
            platform: os.os_name.clone(),
            architecture: arch.into(),
            size_bytes: 0,
            state: state::IMPORTING.into(),
            state_reason: String::new(),
            source: "EXTERNAL_IMPORT".into(),
            license_type: license.clone(),
            family: req.family.clone(),
            deprecated: false,
            cloudinit: false,
            sync_percent: None,
            share_count: 0,
            disks: vec![],
            origin: String::new(),
            created_at: now,
            updated_at: now,
            version: 1,
            tags: req.tags.clone(),
        };
        let payload = serde_json::to_value(Payload {
            url: req.url.trim().to_string(),
            data_urls: req
                .data_disk_urls
                .iter()
                .map(|u| u.trim().to_string())
                .collect(),
            force: req.force,
            os_type: os.os_name.clone(),
            architecture: arch.into(),
            license_type: license,
        })
        .map_err(|e| Error::caused_by(ErrorKind::Internal, "internal failure", e))?;
        // The image and its task in one write: a crash never leaves an IMPORTING image that
        // no task will finish.
        let task = crate::tasks::new_task(
            caller,
            IMPORT_KIND,
            &img.image_id,
            &payload,
            IMPORT_ATTEMPTS,
        );
        self.images()
            .add_images_with_task(std::slice::from_ref(&img), &task, TaskStart::Pending)
            .await?;
        self.wake_runner();
        Ok(Some(img.image_id))
    }

    /// The spool file of `account`'s upload `id`.
    pub fn upload_path(&self, account: &str, id: &str) -> PathBuf {
        ikon_transfer::source::upload_dir(&self.spool_dir(), account).join(id)
    }

    /// Receives an upload (streamed to the spool, size-limited); import it with
    /// `ImageUrl = upload://UPLOAD_ID`.
    pub async fn receive_upload<S, E>(&self, caller: &Caller, mut body: S) -> Result<Upload>
    where
        S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let id = ids::new_id("upl");
        let path = self.upload_path(&caller.account_id, &id);
        let part = path.with_extension("part");
        let io = |e: std::io::Error| Error::new(ErrorKind::Storage, format!("upload spool: {e}"));
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        let max = self.config().import.max_bytes;
        let file = tokio::fs::File::create(&part).await.map_err(io)?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut size = 0u64;
        let outcome: Result<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    bad(
                        ErrorKind::InvalidParameterValue,
                        format!("upload interrupted: {e}"),
                    )
                })?;
                size = size.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
                if size > max {
                    return Err(bad(
                        ErrorKind::TooLarge,
                        format!("uploads are limited to {max} bytes"),
                    ));
                }
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.flush().await.map_err(io)?;
            file.get_ref().sync_data().await.map_err(io)?;
            if size == 0 {
                return Err(bad(ErrorKind::InvalidParameterValue, "the upload is empty"));
            }
            tokio::fs::rename(&part, &path).await.map_err(io)
        }
        .await;
        if let Err(e) = outcome {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        Ok(Upload {
            upload_id: id,
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_list_follows_the_rules() {
        let t = import_os_list(
            &crate::Config::tencent().guest_rules(),
            &crate::Config::tencent().os,
        );
        let names: Vec<&str> = t.iter().map(|o| o.os_name.as_str()).collect();
        for n in [
            "CentOS", "RedHat", "Ubuntu", "Debian", "CoreOS", "OpenSUSE", "SUSE",
        ] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        assert!(names.contains(&"Windows Server 2008") && names.contains(&"Windows Server 2012"));
        assert_eq!(names.iter().filter(|n| **n == "CoreOS").count(), 1);
        let ubuntu = t
            .iter()
            .find(|o| o.os_name == "Ubuntu")
            .map(|o| o.architectures.clone());
        assert_eq!(ubuntu, Some(vec!["x86_64".to_string(), "i386".to_string()]));
        let w = t.iter().find(|o| o.os_name == "Windows Server 2012");
        assert_eq!(
            w.map(|o| o.architectures.clone()),
            Some(vec!["x86_64".to_string()])
        );
        assert_eq!(
            w.map(|o| o.versions.clone()),
            Some(vec!["2012".to_string(), "2012 R2".to_string()])
        );
        let mut narrow = crate::Config::tencent().guest_rules();
        narrow.linux_distros = vec!["debian".into()];
        narrow.linux_bits = vec![64];
        narrow.windows_versions = vec![];
        let n = import_os_list(&narrow, &crate::Config::tencent().os);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].architectures, vec!["x86_64".to_string()]);
    }

    #[test]
    fn source_urls() {
        assert!(matches!(
            SourceUrl::parse("http://h/x.qcow2"),
            Ok(SourceUrl::Http(_))
        ));
        assert_eq!(
            SourceUrl::parse("s3://b/k/x.raw"),
            Ok(SourceUrl::S3 {
                bucket: "b".into(),
                key: "k/x.raw".into()
            })
        );
        assert!(SourceUrl::parse("upload://upl-abcd1234").is_ok());
        for bad in [
            "ftp://x/y",
            "file:///etc/passwd",
            "s3://b",
            "s3://b/",
            "upload://../x",
            "gopher://x",
            "http://",
        ] {
            assert!(SourceUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
