//! Images leaving their place: SyncImages (copy to other regions, reference §2.8) and
//! ExportImages (files in a bucket, §2.12). Parsing and shaping only; the rules are the
//! service's (`svc.transfers().sync_images`, `svc.transfers().export_images`).

use super::params::{missing, Params};
use super::{errors, ApiError, Call};
use ikon_service::{ExportRequest, Service, SyncRequest};
use serde_json::{json, Value};

/// Actions served here.
pub const ACTIONS: &[&str] = &["SyncImages", "ExportImages"];

/// Runs one of [`ACTIONS`].
pub async fn dispatch(svc: &Service, call: &Call) -> Result<Value, ApiError> {
    match call.action.as_str() {
        "SyncImages" => sync_images(svc, call).await,
        "ExportImages" => export_images(svc, call).await,
        a => Err(ApiError::new(
            "InvalidAction",
            format!("action {a} is not supported by this service"),
        )),
    }
}

/// Most images or regions in one call (the policy's ids per call).
fn max_items(svc: &Service) -> usize {
    svc.config().api.ids_per_call
}

fn check_items(svc: &Service, name: &str, n: usize) -> Result<(), ApiError> {
    let max = max_items(svc);
    if n > max {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!("{name} takes at most {max} items"),
        ));
    }
    Ok(())
}

async fn sync_images(svc: &Service, call: &Call) -> Result<Value, ApiError> {
    let p = Params::new(
        &call.params,
        &[
            "ImageIds",
            "DestinationRegions",
            "DryRun",
            "ImageName",
            "ImageSetRequired",
            "Encrypt",
            "KmsKeyId",
        ],
    )?;
    let ids = p.str_list("ImageIds")?.ok_or_else(|| missing("ImageIds"))?;
    if ids.is_empty() {
        return Err(missing("ImageIds"));
    }
    if ids.len() > max_items(svc) {
        return Err(ApiError::new(
            "InvalidImageId.TooLarge",
            format!("ImageIds takes at most {} items", max_items(svc)),
        ));
    }
    let regions = p
        .str_list("DestinationRegions")?
        .ok_or_else(|| missing("DestinationRegions"))?;
    if regions.is_empty() {
        return Err(missing("DestinationRegions"));
    }
    check_items(svc, "DestinationRegions", regions.len())?;
    let name = p.str_opt("ImageName")?;
    let want_set = p.bool_opt("ImageSetRequired")?.unwrap_or(false);
    if p.bool_opt("Encrypt")?.unwrap_or(false) || p.str_opt("KmsKeyId")?.is_some() {
        return Err(ApiError::new(
            "UnsupportedOperation.EncryptedImagesNotSupported",
            "encrypted copies are not supported by this service",
        ));
    }
    let req = SyncRequest {
        image_ids: ids,
        regions,
        name: name.map(str::to_string),
        dry_run: p.bool_opt("DryRun")?.unwrap_or(false),
    };
    let started = svc
        .transfers()
        .sync_images(&call.caller, &req)
        .await
        .map_err(|e| errors::map("SyncImages", e))?;
    let set: Vec<Value> = if want_set {
        started
            .targets
            .iter()
            .map(|t| json!({ "ImageId": t.image_id, "Region": t.region }))
            .collect()
    } else {
        Vec::new()
    };
    Ok(json!({ "ImageSet": set }))
}

/// The numeric TaskId the SDK model declares (u64): a task id's 8 base-36 characters read
/// as a number, so each task has its own.
pub fn numeric_task_id(task_id: &str) -> u64 {
    task_id
        .rsplit('-')
        .next()
        .unwrap_or("")
        .bytes()
        .filter_map(|b| char::from(b).to_digit(36))
        .fold(0u64, |acc, d| {
            acc.saturating_mul(36).saturating_add(u64::from(d))
        })
}

async fn export_images(svc: &Service, call: &Call) -> Result<Value, ApiError> {
    let p = Params::new(
        &call.params,
        &[
            "BucketName",
            "ImageIds",
            "ExportFormat",
            "FileNamePrefixList",
            "OnlyExportRootDisk",
            "DryRun",
            "RoleName",
        ],
    )?;
    let bucket = p.str_req("BucketName")?;
    let ids = p.str_list("ImageIds")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::new(
            "InvalidParameter.ImageIdsSnapshotIdsMustOne",
            "ImageIds must name at least one image",
        ));
    }
    check_items(svc, "ImageIds", ids.len())?;
    let prefixes = p.str_list("FileNamePrefixList")?.unwrap_or_default();
    if !prefixes.is_empty() && prefixes.len() != ids.len() {
        return Err(ApiError::new(
            "InvalidParameterValue.InvalidFileNamePrefixList",
            "FileNamePrefixList must have one entry per image",
        ));
    }
    // The role authorises Tencent's service to write to COS; buckets here need none.
    p.str_opt("RoleName")?;
    let req = ExportRequest {
        image_ids: ids,
        bucket: bucket.to_string(),
        format: p.str_opt("ExportFormat")?.unwrap_or("RAW").to_string(),
        prefixes,
        only_system_disk: p.bool_opt("OnlyExportRootDisk")?.unwrap_or(false),
        dry_run: p.bool_opt("DryRun")?.unwrap_or(false),
    };
    let started = svc
        .transfers()
        .export_images(&call.caller, &req)
        .await
        .map_err(|e| errors::map("ExportImages", e))?;
    let paths: Vec<String> = started.keys.iter().map(|k| format!("/{k}")).collect();
    Ok(json!({
        "TaskId": numeric_task_id(&started.task_id),
        "CosPaths": paths,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_read_as_numbers() {
        assert_eq!(numeric_task_id("task-00000000"), 0);
        assert_eq!(numeric_task_id("task-0000000z"), 35);
        assert_eq!(numeric_task_id("task-00000010"), 36);
        assert_eq!(numeric_task_id("task-zzzzzzzz"), 36u64.pow(8) - 1);
        assert_ne!(
            numeric_task_id("task-abcdefgh"),
            numeric_task_id("task-abcdefgi")
        );
    }
}
