//! Disk and snapshot actions (reference §3.4, §3.5): CreateSnapshot, DescribeSnapshots,
//! DeleteSnapshot and DescribeDisks over the service's disks (`In_use` while their instance
//! exists, `Available` when kept after it) and snapshots (instant: `accomplished` at once).

use super::common::{done, gib, id_list, id_of, paging, time};
use super::{errors, views, ApiError, Call};
use ikon_service::{ids, DiskFilter, InstanceFilter, Service, SnapshotFilter, SnapshotView};
use serde_json::{json, Value};

fn usage_of(disk_type: &str) -> Result<Vec<String>, ApiError> {
    Ok(match disk_type.to_ascii_lowercase().as_str() {
        "all" => vec![],
        "system" => vec!["SYSTEM_DISK".into()],
        "data" => vec!["DATA_DISK".into()],
        _ => {
            return Err(ApiError::new(
                400,
                "InvalidDiskType.ValueNotSupported",
                format!("{disk_type:?} must be all, system or data"),
            ))
        }
    })
}

fn kind_of(usage: &str) -> &'static str {
    if usage == "SYSTEM_DISK" {
        "system"
    } else {
        "data"
    }
}

/// The disk ids of the caller's instance `i-…` (none when it is not theirs).
async fn disks_of_instance(svc: &Service, call: &Call, id: &str) -> Result<Vec<String>, ApiError> {
    let Some(instance_id) = views::from_alibaba("ins", id) else {
        return Ok(vec![]);
    };
    let (_, found) = svc
        .instances()
        .describe_instances(
            &call.caller,
            &InstanceFilter {
                ids: Some(vec![instance_id]),
                limit: 1,
                ..InstanceFilter::default()
            },
        )
        .await
        .map_err(|e| errors::map(&call.action, e))?;
    Ok(found
        .iter()
        .flat_map(|v| v.disks.iter().map(|d| d.disk_id.clone()))
        .collect())
}

/// CreateSnapshot.
pub async fn create_snapshot(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let p = &call.params;
    let disk = id_of("disk", p.str_req("DiskId")?, "Disk")?;
    let name = p.str_opt("SnapshotName").unwrap_or("");
    let deadline = match p.u64_opt("RetentionDays")? {
        None => 0,
        Some(d @ 1..=65_536) => ids::now().saturating_add(i64::try_from(d * 86_400).unwrap_or(0)),
        Some(_) => {
            return Err(ApiError::new(
                400,
                "InvalidRetentionDays.Malformed",
                "RetentionDays must be 1 to 65536",
            ))
        }
    };
    let map = |e| errors::map("CreateSnapshot", e);
    if dry_run {
        disks_check(svc, call, &disk).await?;
        return done(true);
    }
    let id = svc
        .instances()
        .create_snapshot(&call.caller, &disk, name, deadline)
        .await
        .map_err(map)?;
    Ok(json!({ "SnapshotId": views::to_alibaba(&id) }))
}

/// The caller's disk exists (for dry runs).
async fn disks_check(svc: &Service, call: &Call, disk: &str) -> Result<(), ApiError> {
    let (n, _) = svc
        .instances()
        .describe_disks(
            &call.caller,
            &DiskFilter {
                ids: Some(vec![disk.to_string()]),
                limit: 1,
                ..DiskFilter::default()
            },
        )
        .await
        .map_err(|e| errors::map(&call.action, e))?;
    if n == 0 {
        return Err(ApiError::new(
            404,
            "InvalidDiskId.NotFound",
            "The specified DiskId does not exist.",
        ));
    }
    Ok(())
}

fn snapshot(v: &SnapshotView) -> Value {
    let s = &v.snapshot;
    let ok = v.usable();
    json!({
        "SnapshotId": views::to_alibaba(&s.snapshot_id),
        "SnapshotName": s.name,
        "Description": "",
        "Status": if ok { "accomplished" } else { "failed" },
        "Progress": "100%",
        "CreationTime": time(s.created_at),
        "LastModifiedTime": time(s.created_at),
        "SourceDiskId": views::to_alibaba(&s.disk_id),
        "SourceDiskSize": gib(s.size_bytes).to_string(),
        "SourceDiskType": kind_of(&s.usage),
        "SourceStorageType": "disk",
        "SnapshotType": "user",
        "Usage": if v.images.is_empty() { "none" } else { "image" },
        "Category": "standard",
        "Encrypted": false,
        "KMSKeyId": "",
        "ProductCode": "",
        "RetentionDays": 0,
        "RemainTime": 0,
        "Available": ok,
        "InstantAccess": false,
        "SnapshotSN": s.snapshot_id,
        "RegionId": s.region,
        "SourceRegionId": "",
        "SourceSnapshotId": "",
        "ResourceGroupId": "",
        "FullSnapshotSizeInBytes": s.size_bytes,
        "Tags": { "Tag": [] },
    })
}

/// DescribeSnapshots.
pub async fn describe_snapshots(
    svc: &Service,
    call: &Call,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let p = &call.params;
    for name in [
        "Usage",
        "SnapshotLinkId",
        "Filter",
        "Category",
        "KMSKeyId",
        "NextToken",
    ] {
        if p.has(name) {
            return Err(ApiError::new(
                400,
                "UnsupportedParameter",
                format!("the parameter \"{name}\" is not supported by this service"),
            ));
        }
    }
    let (page, size) = paging(p, "InvalidParameter")?;
    let mut f = SnapshotFilter {
        ids: id_list(
            svc,
            p,
            "SnapshotIds",
            "snap",
            (403, "InvalidSnapshotIds.Malformed"),
        )?,
        offset: (page - 1).saturating_mul(size),
        limit: size,
        ..SnapshotFilter::default()
    };
    let mut disks: Option<Vec<String>> = None;
    if let Some(d) = p.str_opt("DiskId") {
        disks = Some(views::from_alibaba("disk", d).into_iter().collect());
    }
    if let Some(i) = p.str_opt("InstanceId") {
        let of = disks_of_instance(svc, call, i).await?;
        disks = Some(match disks {
            Some(d) => d.into_iter().filter(|x| of.contains(x)).collect(),
            None => of,
        });
    }
    match disks {
        // No disk at all: nothing matches.
        Some(d) if d.is_empty() => f.ids = Some(vec![]),
        Some(d) => f.disk_ids = d,
        None => {}
    }
    if let Some(n) = p.str_opt("SnapshotName") {
        f.names = vec![n.to_string()];
    }
    if let Some(t) = p.str_opt("SourceDiskType") {
        f.usages = usage_of(t)?;
    }
    if let Some(s) = p.str_opt("Status") {
        f.states = match s {
            "all" => vec![],
            "accomplished" => vec!["NORMAL".into()],
            "progressing" | "failed" => vec!["NONE".into()],
            other => {
                return Err(ApiError::new(
                    404,
                    "InvalidStatus.NotFound",
                    format!("Status {other:?} is not a snapshot status"),
                ))
            }
        };
    }
    match p.str_opt("SnapshotType") {
        None | Some("all" | "user") => {}
        Some("auto") => f.states = vec!["NONE".into()],
        Some(other) => {
            return Err(ApiError::new(
                404,
                "InvalidSnapshotType.NotFound",
                format!("SnapshotType {other:?} must be auto, user or all"),
            ))
        }
    }
    let (total, list) = svc
        .instances()
        .describe_snapshots(&call.caller, &f)
        .await
        .map_err(|e| errors::map("DescribeSnapshots", e))?;
    if dry_run {
        return done(true);
    }
    let items: Vec<Value> = list.iter().map(snapshot).collect();
    Ok(json!({
        "TotalCount": total,
        "PageNumber": page,
        "PageSize": size,
        "NextToken": "",
        "Snapshots": { "Snapshot": items },
    }))
}

/// DeleteSnapshot (a snapshot that backs an image is refused: delete the image first).
pub async fn delete_snapshot(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let p = &call.params;
    let id = id_of("snap", p.str_req("SnapshotId")?, "Snapshot")?;
    p.bool_opt("Force")?;
    let map = |e| errors::map("DeleteSnapshot", e);
    if dry_run {
        svc.instances()
            .owned_snapshot(&call.caller, &id)
            .await
            .map_err(map)?;
        return done(true);
    }
    svc.instances()
        .delete_snapshots(&call.caller, &[id], false)
        .await
        .map_err(map)?;
    done(false)
}

fn disk(d: &ikon_service::Disk) -> Value {
    let attached_now = !d.instance_id.is_empty();
    let attached = if attached_now {
        time(d.created_at)
    } else {
        String::new()
    };
    let device = if attached_now {
        views::device(usize::try_from(d.slot).unwrap_or(0))
    } else {
        String::new()
    };
    let instance = views::to_alibaba(&d.instance_id);
    let attachments: Vec<Value> = if attached_now {
        vec![json!({ "InstanceId": instance, "Device": device, "AttachedTime": attached })]
    } else {
        vec![]
    };
    json!({
        "DiskId": views::to_alibaba(&d.disk_id),
        "DiskName": "",
        "Description": "",
        "Type": kind_of(&d.usage),
        "Category": views::category_of(&d.disk_type),
        "Size": gib(d.size_bytes),
        "Status": if attached_now { "In_use" } else { "Available" },
        "InstanceId": instance,
        "Device": device,
        "ImageId": "",
        "SourceSnapshotId": "",
        "RegionId": d.region,
        "ZoneId": d.zone,
        "CreationTime": time(d.created_at),
        "AttachedTime": attached,
        "DetachedTime": "",
        "ExpiredTime": "2099-12-31T15:59Z",
        "DiskChargeType": "PostPaid",
        "DeleteWithInstance": d.delete_with_instance,
        "DeleteAutoSnapshot": true,
        "EnableAutoSnapshot": false,
        "Encrypted": false,
        "Portable": d.usage != "SYSTEM_DISK",
        "PerformanceLevel": "",
        "SerialNumber": d.disk_id,
        "IOPS": 0,
        "KMSKeyId": "",
        "ProductCode": "",
        "ResourceGroupId": "",
        "Attachments": { "Attachment": attachments },
        "OperationLocks": { "OperationLock": [] },
        "Tags": { "Tag": [] },
    })
}

/// DescribeDisks.
pub async fn describe_disks(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let p = &call.params;
    let (page, size) = paging(p, "InvalidParameter")?;
    let mut f = DiskFilter {
        ids: id_list(svc, p, "DiskIds", "disk", (403, "InvalidDiskIds.Malformed"))?,
        offset: (page - 1).saturating_mul(size),
        limit: size,
        ..DiskFilter::default()
    };
    if let Some(i) = p.str_opt("InstanceId") {
        match views::from_alibaba("ins", i) {
            Some(id) => f.instance_ids = vec![id],
            None => f.ids = Some(vec![]),
        }
    }
    if let Some(t) = p.str_opt("DiskType") {
        f.usages = usage_of(t)?;
    }
    if let Some(z) = p.str_opt("ZoneId") {
        f.zones = vec![z.to_string()];
    }
    match p.str_opt("Status") {
        None | Some("All") => {}
        Some("In_use") => f.attached = Some(true),
        Some("Available") => f.attached = Some(false),
        // No disk of this service is ever in these states.
        Some("Attaching" | "Detaching" | "Creating" | "ReIniting") => f.ids = Some(vec![]),
        Some(other) => {
            return Err(ApiError::new(
                400,
                "InvalidStatus.ValueNotSupported",
                format!("Status {other:?} is not a disk status"),
            ))
        }
    }
    for name in [
        "Category",
        "SnapshotId",
        "DiskName",
        "Filter",
        "NextToken",
        "Portable",
    ] {
        if p.has(name) {
            return Err(ApiError::new(
                400,
                "UnsupportedParameter",
                format!("the parameter \"{name}\" is not supported by this service"),
            ));
        }
    }
    let (total, list) = svc
        .instances()
        .describe_disks(&call.caller, &f)
        .await
        .map_err(|e| errors::map("DescribeDisks", e))?;
    if dry_run {
        return done(true);
    }
    let items: Vec<Value> = list.iter().map(disk).collect();
    Ok(json!({
        "TotalCount": total,
        "PageNumber": page,
        "PageSize": size,
        "NextToken": "",
        "Disks": { "Disk": items },
    }))
}
