//! Instance and snapshot actions (reference §2.3, §3.2–3.5, §3.7): RunInstances,
//! DescribeInstances, TerminateInstances, ResetInstance, CreateImage (CVM) and
//! CreateSnapshot, DescribeSnapshots, DeleteSnapshots (CBS, same endpoint and version).
//! Each parses its parameters, calls one service operation and shapes the result.

use super::params::{missing, Filter, Params};
use super::views::gib;
use super::{ApiError, Call};
use ikon_service::{
    ids, CreateImageRequest, DataDiskSpec, ImageSource, InstanceFilter, InstanceView, RunRequest,
    Service, SnapshotFilter, SnapshotView,
};
use serde_json::{json, Value};

/// Actions served here.
pub const ACTIONS: &[&str] = &[
    "RunInstances",
    "DescribeInstances",
    "TerminateInstances",
    "ResetInstance",
    "CreateImage",
    "CreateSnapshot",
    "DescribeSnapshots",
    "DeleteSnapshots",
];

const MAX_LIMIT: u64 = 100;

type Map<'a> = &'a (dyn Fn(ikon_service::Error) -> ApiError + Sync);

fn page(p: &Params<'_>) -> Result<(u64, u64), ApiError> {
    let offset = p.u64_opt("Offset")?.unwrap_or(0);
    let limit = p.u64_opt("Limit")?.unwrap_or(20);
    if limit > MAX_LIMIT {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!("Limit is at most {MAX_LIMIT}"),
        ));
    }
    Ok((offset, limit))
}

fn filters(p: &Params<'_>) -> Result<Vec<Filter>, ApiError> {
    let f = p.filters("Filters")?.unwrap_or_default();
    if f.len() > 10 || f.iter().any(|(_, v)| v.len() > 5) {
        return Err(ApiError::new(
            "InvalidFilterValue.LimitExceeded",
            "at most 10 filters of at most 5 values",
        ));
    }
    Ok(f)
}

fn instance(v: &InstanceView) -> Value {
    let i = &v.instance;
    let (cpu, mem) = (v.shape.cpus, v.shape.memory_mib / 1024);
    let sys = v.disks.iter().find(|d| d.usage == "SYSTEM_DISK");
    let data: Vec<Value> = v
        .disks
        .iter()
        .filter(|d| d.usage == "DATA_DISK")
        .map(|d| {
            json!({
                "DiskSize": gib(d.size_bytes), "DiskType": d.disk_type, "DiskId": d.disk_id,
                "DeleteWithInstance": d.delete_with_instance, "Encrypt": false,
            })
        })
        .collect();
    json!({
        "InstanceId": i.instance_id,
        "InstanceState": i.state,
        "ImageId": i.image_id,
        "InstanceName": i.name,
        "InstanceType": i.instance_type,
        "Placement": { "Zone": i.zone, "ProjectId": 0 },
        "CPU": cpu,
        "Memory": mem,
        "SystemDisk": sys.map(|d| json!({
            "DiskType": d.disk_type, "DiskId": d.disk_id, "DiskSize": gib(d.size_bytes),
        })),
        "DataDisks": data,
        "OsName": v.os_name,
        "CreatedTime": ids::iso8601(i.created_at),
        "Uuid": i.instance_id,
        "LatestOperation": i.latest_operation,
        "LatestOperationState": i.latest_operation_state,
        "LatestOperationRequestId": i.latest_operation_request_id,
        "RestrictState": "NORMAL",
        "InstanceChargeType": "POSTPAID_BY_HOUR",
        "PrivateIpAddresses": [],
        "PublicIpAddresses": [],
        "RenewFlag": null,
        "ExpiredTime": null,
        "SecurityGroupIds": [],
        "Tags": [],
        "StopChargingMode": "NOT_APPLICABLE",
        "IsolatedSource": "NOTISOLATED",
        "DisableApiTermination": false,
        "LicenseType": "TencentCloud",
    })
}

fn snapshot(v: &SnapshotView) -> Value {
    let s = &v.snapshot;
    let images: Vec<Value> = v
        .images
        .iter()
        .map(|(id, name)| json!({ "ImageId": id, "ImageName": name }))
        .collect();
    json!({
        "SnapshotId": s.snapshot_id,
        "SnapshotName": s.name,
        "SnapshotState": s.state,
        "DiskId": s.disk_id,
        "DiskSize": gib(s.size_bytes),
        "DiskUsage": s.usage,
        "Percent": 100,
        "CreateTime": ids::date_time(s.created_at),
        "DeadlineTime": "",
        "IsPermanent": true,
        "Encrypt": false,
        "Images": images,
        "ImageCount": v.images.len(),
        "SnapshotType": "PRIVATE_SNAPSHOT",
        "ShareReference": 0,
        "TimeStartShare": "",
        "CopyFromRemote": false,
        "CopyingToRegions": [],
        "Placement": { "Zone": s.zone, "ProjectId": 0 },
        "Tags": [],
        "IsLocked": false,
        "LatestModifyTime": ids::iso8601(s.created_at),
        "AutoSnapshotPolicyId": "",
        "SnapshotMode": "STANDARD_SNAPSHOT",
    })
}

fn gib_field(p: &Params<'_>, name: &str) -> Result<Option<u64>, ApiError> {
    p.u64_opt(name)
}

async fn run_instances(svc: &Service, call: &Call, map: Map<'_>) -> Result<Value, ApiError> {
    let p = Params::new(
        &call.params,
        &[
            "ImageId",
            "Placement",
            "InstanceType",
            "InstanceChargeType",
            "InstanceChargePrepaid",
            "SystemDisk",
            "DataDisks",
            "VirtualPrivateCloud",
            "InternetAccessible",
            "InstanceCount",
            "MinCount",
            "InstanceName",
            "LoginSettings",
            "SecurityGroupIds",
            "EnhancedService",
            "ClientToken",
            "HostName",
            "TagSpecification",
            "UserData",
            "DryRun",
            "DisableApiTermination",
            "ActionTimer",
            "DisasterRecoverGroupIds",
            "InstanceMarketOptions",
            "Metadata",
            "CpuTopology",
            "CamRoleName",
            "HpcClusterId",
            "LaunchTemplate",
            "DedicatedClusterId",
            "ChcIds",
            "PartitionNumber",
            "EnableJumboFrame",
            "NetworkInterfaces",
        ],
    )?;
    let image_id = p.str_req("ImageId")?.to_string();
    let placement = p.get("Placement").ok_or_else(|| missing("Placement"))?;
    let pl = Params::new(
        placement,
        &[
            "Zone",
            "ProjectId",
            "HostIds",
            "DedicatedResourcePackTenancy",
            "DedicatedResourcePackIds",
            "RackId",
        ],
    )?;
    let zone = pl.str_req("Zone")?.to_string();
    let name = p.str_opt("InstanceName")?.unwrap_or("").to_string();
    if p.str_opt("ClientToken")?.is_some_and(|t| t.len() > 64) {
        return Err(ApiError::new(
            "InvalidClientToken.TooLong",
            "ClientToken is longer than 64 characters",
        ));
    }
    let count = p.u64_opt("InstanceCount")?.unwrap_or(1);
    let count = u32::try_from(count)
        .map_err(|_| ApiError::new("InvalidParameterValue", "InstanceCount is out of range"))?;
    let (mut sys_gib, mut sys_type) = (None, String::new());
    if let Some(sd) = p.get("SystemDisk") {
        let sd = Params::new(
            sd,
            &[
                "DiskType", "DiskId", "DiskSize", "CdcId", "DiskName", "Encrypt", "KmsKeyId",
            ],
        )?;
        sys_gib = gib_field(&sd, "DiskSize")?;
        sys_type = sd.str_opt("DiskType")?.unwrap_or("").to_string();
    }
    let mut data_disks = Vec::new();
    if let Some(dd) = p.get("DataDisks") {
        let arr = dd
            .as_array()
            .ok_or_else(|| ApiError::new("InvalidParameter", "DataDisks must be a list"))?;
        for d in arr {
            let d = Params::new(
                d,
                &[
                    "DiskSize",
                    "DiskType",
                    "DiskId",
                    "DeleteWithInstance",
                    "SnapshotId",
                    "Encrypt",
                    "KmsKeyId",
                    "ThroughputPerformance",
                    "CdcId",
                    "BurstPerformance",
                    "DiskName",
                ],
            )?;
            let size = d
                .u64_opt("DiskSize")?
                .ok_or_else(|| missing("DataDisks.DiskSize"))?;
            let snapshot_id = d.str_opt("SnapshotId")?.map(str::to_string);
            if let Some(s) = &snapshot_id {
                if !ids::is_well_formed("snap", s) {
                    return Err(ApiError::new(
                        "InvalidParameterValue.SnapshotIdMalformed",
                        format!("{s:?} is not a snapshot id"),
                    ));
                }
            }
            data_disks.push(DataDiskSpec {
                size_gib: size,
                disk_type: d.str_opt("DiskType")?.unwrap_or("").to_string(),
                snapshot_id,
                delete_with_instance: d.bool_opt("DeleteWithInstance")?.unwrap_or(true),
            });
        }
    }
    let req = RunRequest {
        image_id,
        zone,
        count,
        // Empty: the policy's default type.
        instance_type: p.str_opt("InstanceType")?.unwrap_or("").to_string(),
        name,
        system_disk_gib: sys_gib,
        system_disk_type: sys_type,
        data_disks,
        dry_run: p.bool_opt("DryRun")?.unwrap_or(false),
    };
    let ids = svc
        .instances()
        .run_instances(&call.caller, &req)
        .await
        .map_err(map)?;
    Ok(json!({ "InstanceIdSet": ids }))
}

async fn describe_instances(svc: &Service, call: &Call, map: Map<'_>) -> Result<Value, ApiError> {
    let p = Params::new(&call.params, &["InstanceIds", "Filters", "Offset", "Limit"])?;
    let (offset, limit) = page(&p)?;
    let mut f = InstanceFilter {
        offset,
        limit,
        ..InstanceFilter::default()
    };
    let ids = p.str_list("InstanceIds")?;
    let fl = filters(&p)?;
    if ids.is_some() && !fl.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "InstanceIds and Filters cannot be combined",
        ));
    }
    if let Some(ids) = ids {
        super::params::check_count(svc, "InstanceIds", ids.len())?;
        f.ids = Some(ids);
    }
    for (name, values) in fl {
        match name.as_str() {
            "zone" => f.zones.extend(values),
            "instance-id" => f.ids = Some(values),
            "instance-name" => f.names.extend(values),
            "instance-state" => f.states.extend(values),
            "image-id" => f.image_ids.extend(values),
            "project-id" | "instance-charge-type" => {}
            other => {
                return Err(ApiError::new(
                    "InvalidFilter",
                    format!("unknown filter {other:?}"),
                ))
            }
        }
    }
    let (total, list) = svc
        .instances()
        .describe_instances(&call.caller, &f)
        .await
        .map_err(map)?;
    let set: Vec<Value> = list.iter().map(instance).collect();
    Ok(json!({ "TotalCount": total, "InstanceSet": set }))
}

async fn create_image(svc: &Service, call: &Call, map: Map<'_>) -> Result<Value, ApiError> {
    let p = Params::new(
        &call.params,
        &[
            "ImageName",
            "InstanceId",
            "ImageDescription",
            "ForcePoweroff",
            "Sysprep",
            "DataDiskIds",
            "SnapshotIds",
            "DryRun",
            "TagSpecification",
            "ImageFamily",
        ],
    )?;
    let name = p.str_req("ImageName")?.to_string();
    let instance = p.str_opt("InstanceId")?;
    let snaps = p.str_list("SnapshotIds")?;
    let source = match (instance, snaps) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                "InvalidParameter.SpecifyOneParameter",
                "give InstanceId or SnapshotIds, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::new(
                "InvalidParameter.SpecifyOneParameter",
                "give InstanceId or SnapshotIds",
            ))
        }
        (Some(i), None) => ImageSource::Instance {
            instance_id: i.to_string(),
            data_disk_ids: p.str_list("DataDiskIds")?.unwrap_or_default(),
        },
        (None, Some(s)) => {
            if p.get("DataDiskIds").is_some() {
                return Err(ApiError::new(
                    "InvalidParameterConflict",
                    "DataDiskIds go with InstanceId",
                ));
            }
            ImageSource::Snapshots(s)
        }
    };
    let mut tags = Vec::new();
    if let Some(ts) = p.get("TagSpecification").and_then(Value::as_array) {
        for t in ts {
            for tag in t
                .get("Tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let k = tag.get("Key").and_then(Value::as_str).unwrap_or("");
                let v = tag.get("Value").and_then(Value::as_str).unwrap_or("");
                tags.push((k.to_string(), v.to_string()));
            }
        }
    }
    let req = CreateImageRequest {
        name,
        description: p.str_opt("ImageDescription")?.unwrap_or("").to_string(),
        source,
        family: p.str_opt("ImageFamily")?.unwrap_or("").to_string(),
        tags,
        dry_run: p.bool_opt("DryRun")?.unwrap_or(false),
    };
    let id = svc
        .images()
        .create_image(&call.caller, &req)
        .await
        .map_err(map)?;
    Ok(json!({ "ImageId": id }))
}

async fn describe_snapshots(svc: &Service, call: &Call, map: Map<'_>) -> Result<Value, ApiError> {
    let p = Params::new(
        &call.params,
        &[
            "SnapshotIds",
            "Filters",
            "Limit",
            "Offset",
            "OrderField",
            "Order",
        ],
    )?;
    let (offset, limit) = page(&p)?;
    let mut f = SnapshotFilter {
        offset,
        limit,
        ascending: p.str_opt("Order")? == Some("ASC"),
        ..SnapshotFilter::default()
    };
    let ids = p.str_list("SnapshotIds")?;
    let fl = filters(&p)?;
    if ids.is_some() && !fl.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "SnapshotIds and Filters cannot be combined",
        ));
    }
    f.ids = ids;
    for (name, values) in fl {
        match name.as_str() {
            "snapshot-id" => f.ids = Some(values),
            "snapshot-name" => f.names.extend(values),
            "snapshot-state" => f.states.extend(values),
            "disk-usage" => f.usages.extend(values),
            "disk-id" => f.disk_ids.extend(values),
            "zone" => f.zones.extend(values),
            "project-id" | "encrypt" | "snapshot-type" => {}
            other => {
                return Err(ApiError::new(
                    "InvalidFilter",
                    format!("unknown filter {other:?}"),
                ))
            }
        }
    }
    let (total, list) = svc
        .instances()
        .describe_snapshots(&call.caller, &f)
        .await
        .map_err(map)?;
    let set: Vec<Value> = list.iter().map(snapshot).collect();
    Ok(json!({ "TotalCount": total, "SnapshotSet": set }))
}

/// Runs one of [`ACTIONS`] (region and daily limit already checked by the caller).
pub async fn dispatch(svc: &Service, call: &Call, map: Map<'_>) -> Result<Value, ApiError> {
    match call.action.as_str() {
        "RunInstances" => run_instances(svc, call, map).await,
        "DescribeInstances" => describe_instances(svc, call, map).await,
        "TerminateInstances" => {
            let p = Params::new(
                &call.params,
                &["InstanceIds", "ReleaseAddress", "ReleasePrepaidDataDisks"],
            )?;
            let ids = p
                .str_list("InstanceIds")?
                .ok_or_else(|| missing("InstanceIds"))?;
            super::params::check_count(svc, "InstanceIds", ids.len())?;
            svc.instances()
                .terminate_instances(&call.caller, &ids)
                .await
                .map_err(map)?;
            Ok(json!({}))
        }
        "ResetInstance" => {
            let p = Params::new(
                &call.params,
                &[
                    "InstanceId",
                    "ImageId",
                    "SystemDisk",
                    "LoginSettings",
                    "EnhancedService",
                    "HostName",
                    "UserData",
                ],
            )?;
            let id = p.str_req("InstanceId")?;
            let image = p.str_opt("ImageId")?;
            let mut size = None;
            if let Some(sd) = p.get("SystemDisk") {
                let sd = Params::new(
                    sd,
                    &[
                        "DiskType", "DiskId", "DiskSize", "CdcId", "DiskName", "Encrypt",
                        "KmsKeyId",
                    ],
                )?;
                size = sd.u64_opt("DiskSize")?;
            }
            let rid = ids::uuid4();
            svc.instances()
                .reset_instance(&call.caller, id, image, size, &rid)
                .await
                .map_err(map)?;
            Ok(json!({}))
        }
        "CreateImage" => create_image(svc, call, map).await,
        "CreateSnapshot" => {
            let p = Params::new(
                &call.params,
                &[
                    "DiskId",
                    "SnapshotName",
                    "Deadline",
                    "DiskBackupId",
                    "Tags",
                    "LocalSnap",
                    "DiskUsage",
                ],
            )?;
            if p.get("Deadline").is_some() || p.get("DiskBackupId").is_some() {
                return Err(ApiError::new(
                    "InvalidParameterValue",
                    "Deadline (auto-delete) and DiskBackupId are not supported by this service",
                ));
            }
            let disk = p.str_req("DiskId")?;
            let name = p.str_opt("SnapshotName")?.unwrap_or("");
            let id = svc
                .instances()
                .create_snapshot(&call.caller, disk, name, 0)
                .await
                .map_err(map)?;
            Ok(json!({ "SnapshotId": id }))
        }
        "DescribeSnapshots" => describe_snapshots(svc, call, map).await,
        "DeleteSnapshots" => {
            let p = Params::new(&call.params, &["SnapshotIds", "DeleteBindImages"])?;
            let ids = p
                .str_list("SnapshotIds")?
                .ok_or_else(|| missing("SnapshotIds"))?;
            let bind = p.bool_opt("DeleteBindImages")?.unwrap_or(false);
            svc.instances()
                .delete_snapshots(&call.caller, &ids, bind)
                .await
                .map_err(map)?;
            Ok(json!({}))
        }
        other => Err(ApiError::new(
            "InvalidAction",
            format!("action {other} is not supported"),
        )),
    }
}
