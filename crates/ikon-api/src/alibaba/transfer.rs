//! Images entering Ikon through Alibaba's API (reference §2.4): ImportImage with
//! `DiskDeviceMapping.N.{OSSBucket, OSSObject}` read from the configured S3-compatible
//! store standing in for OSS (N=1 the system disk, N=2..17 data disks), over the same
//! service operation as Tencent's ImportImage; the answer carries the image and its
//! ImportImage task (`t-…`), which DescribeTasks follows. Images leaving: ExportImage
//! (files in a bucket of the S3 engine), CopyImage to another region (only missing chunks
//! are sent; the region policy is the service's) and CancelCopyImage.

use super::common::done;
use super::params::missing;
use super::{views, ApiError, Call};
use ikon_service::import::ImportRequest;
use ikon_service::Service;
use serde_json::{json, Value};

/// ImportImage.
pub async fn import_image(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let p = &call.params;
    let maps = p.objects("DiskDeviceMapping");
    let Some(system) = maps.first() else {
        return Err(ApiError::new(
            403,
            "MissingParameter.DiskDeviceMapping",
            "The input parameter DiskDeviceMapping that is mandatory for processing this request is not supplied.",
        ));
    };
    let data_max = usize::try_from(svc.config().import.max_data_disks).unwrap_or(usize::MAX);
    if maps.len() > data_max.saturating_add(1) {
        return Err(ApiError::new(
            400,
            "InvalidParameter",
            format!(
                "at most {} DiskDeviceMapping entries (1 system disk and {data_max} data disks)",
                data_max.saturating_add(1)
            ),
        ));
    }
    let url = |m: &std::collections::BTreeMap<String, String>, n: usize| {
        let bucket = m
            .get("OSSBucket")
            .filter(|b| !b.is_empty())
            .ok_or_else(|| missing(&format!("DiskDeviceMapping.{n}.OSSBucket")))?;
        let object = m
            .get("OSSObject")
            .filter(|o| !o.is_empty())
            .ok_or_else(|| missing(&format!("DiskDeviceMapping.{n}.OSSObject")))?;
        if let Some(f) = m.get("Format").filter(|f| !f.is_empty()) {
            if !matches!(
                f.to_ascii_uppercase().as_str(),
                "RAW" | "VHD" | "QCOW2" | "VMDK"
            ) {
                return Err(ApiError::new(
                    400,
                    "InvalidImageFormat.Malformed",
                    format!("The specified format {f:?} is not RAW, VHD, QCOW2 or VMDK (formats are detected from content)."),
                ));
            }
        }
        Ok(format!("s3://{bucket}/{}", object.trim_start_matches('/')))
    };
    let system_url = url(system, 1)?;
    let mut data = Vec::new();
    for (i, m) in maps.iter().enumerate().skip(1) {
        data.push(url(m, i + 1)?);
    }
    let name = p
        .str_opt("ImageName")
        .map(str::to_string)
        .unwrap_or_else(|| format!("import-{}", ikon_service::ids::new_id("m")));
    let os = p.str_opt("OSType").unwrap_or("linux");
    if !matches!(os.to_ascii_lowercase().as_str(), "linux" | "windows") {
        return Err(ApiError::new(
            400,
            "InvalidOSType.Malformed",
            "OSType must be linux or windows.",
        ));
    }
    let arch = match p.str_opt("Architecture").unwrap_or("x86_64") {
        "x86_64" => "x86_64",
        "i386" => "i386",
        "arm64" => "arm_64",
        other => {
            return Err(ApiError::new(
                400,
                "InvalidArchitecture.Malformed",
                format!("The specified Architecture {other:?} is not valid."),
            ))
        }
    };
    let license = match p.str_opt("LicenseType").unwrap_or("Auto") {
        "Auto" | "Aliyun" => None,
        "BYOL" => Some("BYOL".to_string()),
        other => {
            return Err(ApiError::new(
                400,
                "InvalidLicenseType.NotSupported",
                format!("The specified LicenseType {other:?} is not supported."),
            ))
        }
    };
    let boot = match p.str_opt("BootMode") {
        None | Some("BIOS") => None,
        Some("UEFI") => Some("UEFI".to_string()),
        Some(other) => {
            return Err(ApiError::new(
                400,
                "InvalidParameter",
                format!("BootMode {other:?} must be BIOS or UEFI"),
            ))
        }
    };
    let tags: Vec<(String, String)> = p
        .objects("Tag")
        .into_iter()
        .filter_map(|t| {
            Some((
                t.get("Key")?.clone(),
                t.get("Value").cloned().unwrap_or_default(),
            ))
        })
        .collect();
    let req = ImportRequest {
        name,
        description: p.str_opt("Description").unwrap_or("").to_string(),
        url: system_url,
        os_type: svc.transfers().import_os_type(
            p.str_opt("Platform").unwrap_or(""),
            os.eq_ignore_ascii_case("windows"),
        ),
        os_version: String::new(),
        architecture: arch.into(),
        force: false,
        license_type: license,
        boot_mode: boot,
        family: String::new(),
        tags,
        dry_run,
        data_disk_urls: data,
    };
    let map = |e| super::errors::map("ImportImage", e);
    let image = svc
        .transfers()
        .import_image(&call.caller, &req)
        .await
        .map_err(map)?;
    let Some(image) = image else {
        return done(true);
    };
    let task = svc
        .transfers()
        .image_tasks(&call.caller, &image)
        .await
        .map_err(map)?
        .into_iter()
        .next()
        .map(|t| views::to_alibaba(&t.task_id))
        .unwrap_or_default();
    Ok(json!({
        "RegionId": call.caller.region,
        "ImageId": views::to_alibaba(&image),
        "TaskId": task,
    }))
}

fn image_param(call: &Call, name: &str) -> Result<String, ApiError> {
    let id = call.params.str_req(name)?;
    Ok(views::from_alibaba("img", id).unwrap_or_else(|| id.to_string()))
}

/// ExportImage: the image's disks as files in a bucket of the configured S3 engine
/// (`OSSBucket`), named with `OSSPrefix`; a task (`t-…`, TaskAction ExportImage) does it.
pub async fn export_image(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let p = &call.params;
    let image = image_param(call, "ImageId")?;
    let bucket = p.str_req("OSSBucket")?.to_string();
    let prefix = p.str_opt("OSSPrefix").unwrap_or("").to_string();
    if !prefix.is_empty()
        && (prefix.len() > 30 || !prefix.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(ApiError::new(
            400,
            "InvalidOSSPrefix.Malformed",
            "OSSPrefix must be 1 to 30 letters or digits.",
        ));
    }
    let format = p
        .str_opt("ImageFormat")
        .unwrap_or("raw")
        .to_ascii_uppercase();
    if !matches!(format.as_str(), "RAW" | "VHD" | "QCOW2" | "VMDK") {
        return Err(ApiError::new(
            400,
            "InvalidImageFormat.Malformed",
            format!("ImageFormat {format:?} is not raw, vhd, qcow2 or vmdk."),
        ));
    }
    let req = ikon_service::ExportRequest {
        image_ids: vec![image],
        bucket,
        format,
        prefixes: if prefix.is_empty() {
            vec![]
        } else {
            vec![prefix]
        },
        only_system_disk: false,
        dry_run,
    };
    let started = svc
        .transfers()
        .export_images(&call.caller, &req)
        .await
        .map_err(|e| super::errors::map("ExportImage", e))?;
    if dry_run {
        return done(true);
    }
    Ok(json!({
        "RegionId": call.caller.region,
        "TaskId": views::to_alibaba(&started.task_id),
    }))
}

/// CopyImage: a copy of the caller's image in `DestinationRegionId` (sending only the
/// chunks that region's store lacks); the copy is `Creating` until done.
pub async fn copy_image(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let p = &call.params;
    let image = image_param(call, "ImageId")?;
    let dest = p
        .str_opt("DestinationRegionId")
        .unwrap_or(&call.caller.region)
        .to_string();
    if svc.config().region(&dest).is_none() {
        return Err(ApiError::new(
            400,
            "DestinationRegion.NotFound",
            format!("The destination region {dest} does not exist."),
        ));
    }
    if p.str_opt("Encrypted") == Some("true") || p.str_opt("KMSKeyId").is_some() {
        return Err(ApiError::new(
            400,
            "InvalidParameter.EncryptedIllegal",
            "Encrypted copies are not supported by this service.",
        ));
    }
    let req = ikon_service::SyncRequest {
        image_ids: vec![image],
        regions: vec![dest],
        name: p.str_opt("DestinationImageName").map(str::to_string),
        dry_run,
    };
    let started = svc
        .transfers()
        .sync_images(&call.caller, &req)
        .await
        .map_err(|e| super::errors::map("CopyImage", e))?;
    if dry_run {
        return done(true);
    }
    let copy = started
        .targets
        .first()
        .map(|t| views::to_alibaba(&t.image_id))
        .unwrap_or_default();
    Ok(json!({ "ImageId": copy }))
}

/// CancelCopyImage: `RegionId` is the destination and `ImageId` the copy.
pub async fn cancel_copy_image(
    svc: &Service,
    call: &Call,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let image = image_param(call, "ImageId")?;
    let map = |e: ikon_service::Error| match e.kind {
        ikon_service::ErrorKind::InvalidParameterValue => {
            ApiError::new(400, "ImageCreatedNotFromCopy", e.message)
        }
        _ => super::errors::map("CancelCopyImage", e),
    };
    if dry_run {
        // A dry run makes every check the real call makes.
        svc.transfers()
            .check_cancel_copy(&call.caller, &image)
            .await
            .map_err(map)?;
        return done(true);
    }
    svc.transfers()
        .cancel_copy(&call.caller, &image)
        .await
        .map_err(map)?;
    Ok(json!({}))
}
