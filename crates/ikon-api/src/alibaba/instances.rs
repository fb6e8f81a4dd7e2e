//! Instance actions (reference §2.3, §2.13, §3.1–3.3): RunInstances, DescribeInstances,
//! DeleteInstance, DeleteInstances, ReplaceSystemDisk and CreateImage, over the service's
//! instances (sets of disks; there are no virtual machines, networks or logins here, so
//! network, login, billing and placement-policy parameters are accepted and have no effect).
//! Ids: instance `ins-X` is `i-X`, disk `disk-X` is `d-X`, snapshot `snap-X` is `s-X`.

use super::common::{done, id_list, id_of, max_ids, not_found, paging};
use super::params::{missing, Params};
use super::{errors, views, ApiError, Call};
use ikon_service::{
    CreateImageRequest, DataDiskSpec, ImageSource, InstanceFilter, InstanceView, RunRequest,
    Service,
};
use serde_json::{json, Value};

fn size_param(p: &Params, name: &str, code: &str) -> Result<Option<u64>, ApiError> {
    p.u64_opt(name)
        .map_err(|_| ApiError::new(400, code, format!("{name} must be a whole number of GiB")))
}

/// The service disk type of a `Category` (absent: the service's default).
fn disk_type(category: Option<&String>, code: &str) -> Result<String, ApiError> {
    match category.filter(|c| !c.is_empty()) {
        None => Ok(String::new()),
        Some(c) => views::disk_type_of(c)
            .map(str::to_string)
            .ok_or_else(|| ApiError::new(400, code, format!("Category {c:?} is not supported"))),
    }
}

/// RunInstances.
pub async fn run(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let p = &call.params;
    let map = |e| errors::map("RunInstances", e);
    let image_id = match (p.str_opt("ImageId"), p.str_opt("ImageFamily")) {
        (Some(id), _) => id_of("img", id, "Image")?,
        (None, Some(family)) => svc
            .images()
            .image_from_family(&call.caller, family)
            .await
            .map_err(map)?
            .map(|v| v.image.image_id)
            .ok_or_else(|| not_found("Image"))?,
        (None, None) => return Err(missing("ImageId")),
    };
    let instance_type = p.str_req("InstanceType")?.to_string();
    let amount = p.u64_opt("Amount")?.unwrap_or(1);
    let max = u64::from(svc.config().instances.max_per_call);
    if !(1..=max).contains(&amount) || p.u64_opt("MinAmount")?.is_some_and(|m| m > amount) {
        return Err(ApiError::new(
            403,
            "InvalidParam.Amount",
            format!("Amount must be 1 to {max} and not less than MinAmount"),
        ));
    }
    // Without ZoneId the instances go to the region's default zone (the policy's).
    let zone = p.str_opt("ZoneId").unwrap_or("").to_string();
    let name = p.str_opt("InstanceName").unwrap_or("").to_string();
    let sys_gib = size_param(
        p,
        "SystemDisk.Size",
        "InvalidSystemDiskSize.ValueNotSupported",
    )?;
    let sys_type = disk_type(
        p.str_opt("SystemDisk.Category")
            .map(str::to_string)
            .as_ref(),
        "InvalidSystemDiskCategory.ValueNotSupported",
    )?;
    let specs = p.objects("DataDisk");
    let mut data_disks = Vec::new();
    for d in specs {
        let snapshot_id = match d.get("SnapshotId").filter(|s| !s.is_empty()) {
            Some(s) => Some(id_of("snap", s, "Snapshot")?),
            None => None,
        };
        let size = match d.get("Size").filter(|s| !s.is_empty()) {
            Some(s) => s.trim().parse::<u64>().map_err(|_| {
                ApiError::new(
                    400,
                    "InvalidDataDiskSize.ValueNotSupported",
                    "DataDisk.N.Size must be a whole number of GiB",
                )
            })?,
            // From a snapshot the disk takes the snapshot's size.
            None if snapshot_id.is_some() => 1,
            None => return Err(missing("DataDisk.N.Size")),
        };
        let dwi = match d.get("DeleteWithInstance").map(String::as_str) {
            None | Some("") => true,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(_) => {
                return Err(ApiError::invalid(
                    "DataDisk.N.DeleteWithInstance must be true or false",
                ))
            }
        };
        data_disks.push(DataDiskSpec {
            size_gib: size,
            disk_type: disk_type(
                d.get("Category"),
                "InvalidDataDiskCategory.ValueNotSupported",
            )?,
            snapshot_id,
            delete_with_instance: dwi,
        });
    }
    let req = RunRequest {
        image_id,
        zone,
        count: u32::try_from(amount).unwrap_or(1),
        instance_type,
        name,
        system_disk_gib: sys_gib,
        system_disk_type: sys_type,
        data_disks,
        dry_run,
    };
    let ids = svc
        .instances()
        .run_instances(&call.caller, &req)
        .await
        .map_err(map)?;
    if dry_run {
        return done(true);
    }
    let ids: Vec<String> = ids.iter().map(|i| views::to_alibaba(i)).collect();
    Ok(json!({ "InstanceIdSets": { "InstanceIdSet": ids } }))
}

fn instance(v: &InstanceView) -> Value {
    let i = &v.instance;
    let (cpu, memory, family) = (v.shape.cpus, v.shape.memory_mib, &v.shape.family);
    let windows = v.os_name.to_ascii_lowercase().contains("windows");
    json!({
        "InstanceId": views::to_alibaba(&i.instance_id),
        "InstanceName": i.name,
        "Description": "",
        "HostName": i.name,
        "ImageId": views::to_alibaba(&i.image_id),
        "InstanceType": i.instance_type,
        "InstanceTypeFamily": family,
        "Cpu": cpu,
        "Memory": memory,
        "Status": if v.running() { "Running" } else { "Stopped" },
        "RegionId": i.region,
        "ZoneId": i.zone,
        "CreationTime": views::minutes(i.created_at),
        "StartTime": views::minutes(i.created_at),
        "ExpiredTime": "2099-12-31T15:59Z",
        "AutoReleaseTime": "",
        "OSName": v.os_name,
        "OSNameEn": v.os_name,
        "OSType": if windows { "windows" } else { "linux" },
        "InstanceChargeType": "PostPaid",
        "InternetChargeType": "PayByTraffic",
        "InternetMaxBandwidthIn": 0,
        "InternetMaxBandwidthOut": 0,
        "InstanceNetworkType": "vpc",
        "IoOptimized": true,
        "SerialNumber": i.instance_id,
        "KeyPairName": "",
        "DeletionProtection": false,
        "StoppedMode": "Not-applicable",
        "ResourceGroupId": "",
        "Tags": { "Tag": [] },
        "SecurityGroupIds": { "SecurityGroupId": [] },
        "PublicIpAddress": { "IpAddress": [] },
        "InnerIpAddress": { "IpAddress": [] },
        "OperationLocks": { "LockReason": [] },
    })
}

/// DescribeInstances.
pub async fn describe(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let p = &call.params;
    let (page, size) = paging(p, "InvalidParameter")?;
    let mut f = InstanceFilter {
        ids: id_list(
            svc,
            p,
            "InstanceIds",
            "ins",
            (400, "InvalidInstanceIds.Malformed"),
        )?,
        offset: (page - 1).saturating_mul(size),
        limit: size,
        ..InstanceFilter::default()
    };
    if let Some(img) = p.str_opt("ImageId") {
        // An id that names no image matches no instance.
        f.image_ids = vec![views::from_alibaba_id(img).unwrap_or_else(|| img.to_string())];
    }
    if let Some(z) = p.str_opt("ZoneId") {
        f.zones = vec![z.to_string()];
    }
    if let Some(n) = p.str_opt("InstanceName") {
        f.names = vec![n.trim_matches('*').to_string()];
    }
    if let Some(s) = p.str_opt("Status") {
        f.states = match s {
            "Running" => vec!["RUNNING".into()],
            "Pending" | "Starting" | "Stopping" | "Stopped" => vec!["NONE".into()],
            other => {
                return Err(ApiError::new(
                    404,
                    "InvalidStatus.NotFound",
                    format!("Status {other:?} is not an instance status"),
                ))
            }
        };
    }
    let (total, list) = svc
        .instances()
        .describe_instances(&call.caller, &f)
        .await
        .map_err(|e| errors::map("DescribeInstances", e))?;
    if dry_run {
        return done(true);
    }
    let items: Vec<Value> = list.iter().map(instance).collect();
    Ok(json!({
        "TotalCount": total,
        "PageNumber": page,
        "PageSize": size,
        "NextToken": "",
        "Instances": { "Instance": items },
    }))
}

/// DeleteInstance (one, named by `InstanceId`) and DeleteInstances (`InstanceId.N`). Every
/// instance here runs; `Force` is accepted either way.
pub async fn delete(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let p = &call.params;
    let given = if call.action == "DeleteInstance" {
        vec![p.str_req("InstanceId")?.to_string()]
    } else {
        let l = p.list("InstanceId");
        if l.is_empty() {
            return Err(missing("InstanceId.1"));
        }
        l
    };
    let max = max_ids(svc);
    if given.len() > max {
        return Err(ApiError::invalid(format!(
            "InstanceId.N takes at most {max} ids"
        )));
    }
    p.bool_opt("Force")?;
    let ids = given
        .iter()
        .map(|i| id_of("ins", i, "Instance"))
        .collect::<Result<Vec<_>, _>>()?;
    let map = |e| errors::map(&call.action, e);
    if dry_run {
        for id in &ids {
            svc.instances()
                .owned_instance(&call.caller, id)
                .await
                .map_err(map)?;
        }
        return done(true);
    }
    svc.instances()
        .terminate_instances(&call.caller, &ids)
        .await
        .map_err(map)?;
    done(false)
}

/// ReplaceSystemDisk: re-installs the system disk from `ImageId` (the disk keeps its id).
pub async fn replace_system_disk(
    svc: &Service,
    call: &Call,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let p = &call.params;
    let map = |e| errors::map("ReplaceSystemDisk", e);
    let id = id_of("ins", p.str_req("InstanceId")?, "Instance")?;
    let image = id_of("img", p.str_req("ImageId")?, "Image")?;
    let size = size_param(
        p,
        "SystemDisk.Size",
        "InvalidSystemDiskSize.ValueNotSupported",
    )?;
    if dry_run {
        svc.instances()
            .owned_instance(&call.caller, &id)
            .await
            .map_err(map)?;
        svc.images()
            .visible_image(&call.caller, &image)
            .await
            .map_err(map)?;
        return done(true);
    }
    svc.instances()
        .reset_instance(&call.caller, &id, Some(&image), size, "")
        .await
        .map_err(map)?;
    let (_, views_) = svc
        .instances()
        .describe_instances(
            &call.caller,
            &InstanceFilter {
                ids: Some(vec![id.clone()]),
                limit: 1,
                ..InstanceFilter::default()
            },
        )
        .await
        .map_err(map)?;
    let disk = views_
        .first()
        .and_then(|v| v.disks.iter().find(|d| d.usage == "SYSTEM_DISK"))
        .map(|d| views::to_alibaba(&d.disk_id))
        .unwrap_or_default();
    Ok(json!({ "DiskId": disk }))
}

/// CreateImage from `InstanceId` (its system disk and every data disk), `SnapshotId` (a
/// system-disk snapshot) or `DiskDeviceMapping.N.SnapshotId` (one system + data snapshots).
pub async fn create_image(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let p = &call.params;
    let map = |e| errors::map("CreateImage", e);
    for name in ["Platform", "Architecture", "BootMode", "ImageVersion"] {
        if p.has(name) {
            return Err(ApiError::new(
                400,
                "UnsupportedParameter",
                format!("the parameter \"{name}\" is not supported by this service: the image takes it from its source"),
            ));
        }
    }
    let mappings = p.objects("DiskDeviceMapping");
    let sources = [
        p.has("InstanceId"),
        p.has("SnapshotId"),
        !mappings.is_empty(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(ApiError::new(
            400,
            "MissingParameter",
            "The input parameter SnapshotId or InstanceId or DiskDeviceMapping that is mandatory for processing this request is not supplied.",
        ));
    }
    let source = if let Some(i) = p.str_opt("InstanceId") {
        let instance_id = id_of("ins", i, "Instance")?;
        let (_, found) = svc
            .instances()
            .describe_instances(
                &call.caller,
                &InstanceFilter {
                    ids: Some(vec![instance_id.clone()]),
                    limit: 1,
                    ..InstanceFilter::default()
                },
            )
            .await
            .map_err(map)?;
        let data_disk_ids = found
            .first()
            .map(|v| {
                v.disks
                    .iter()
                    .filter(|d| d.usage == "DATA_DISK")
                    .map(|d| d.disk_id.clone())
                    .collect()
            })
            .unwrap_or_default();
        ImageSource::Instance {
            instance_id,
            data_disk_ids,
        }
    } else if let Some(s) = p.str_opt("SnapshotId") {
        ImageSource::Snapshots(vec![id_of("snap", s, "Snapshot")?])
    } else {
        let mut snaps = Vec::new();
        for m in &mappings {
            if m.get("Size").is_some_and(|s| !s.is_empty()) {
                return Err(ApiError::new(
                    400,
                    "UnsupportedParameter",
                    "DiskDeviceMapping.N.Size is not supported: each disk keeps its snapshot's size",
                ));
            }
            let s = m
                .get("SnapshotId")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("DiskDeviceMapping.N.SnapshotId"))?;
            snaps.push(id_of("snap", s, "Snapshot")?);
        }
        ImageSource::Snapshots(snaps)
    };
    let text = |name: &str| p.str_opt(name).unwrap_or("").to_string();
    let tags = p
        .objects("Tag")
        .into_iter()
        .filter_map(|t| {
            Some((
                t.get("Key")?.clone(),
                t.get("Value").cloned().unwrap_or_default(),
            ))
        })
        .collect();
    let req = CreateImageRequest {
        name: text("ImageName"),
        description: text("Description"),
        source,
        family: text("ImageFamily"),
        tags,
        dry_run,
    };
    let id = svc
        .images()
        .create_image(&call.caller, &req)
        .await
        .map_err(map)?;
    if dry_run {
        return done(true);
    }
    Ok(json!({ "ImageId": views::to_alibaba(&id) }))
}
