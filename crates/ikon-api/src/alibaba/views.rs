//! Service results in the shapes the Alibaba SDK models declare (reference §2.1): exact
//! field names and JSON types (`Size` a number, `DiskDeviceMapping.Size` and `IsSelfShared`
//! strings, lists wrapped as `{"Image": [...]}`), and the id mapping between dialects.
//!
//! Id mapping ([`PREFIXES`]): one object has one identity in both dialects, only the
//! prefix differs — image `img-abcd1234` is `m-abcd1234` here, snapshot `snap-X` is `s-X`,
//! instance `ins-X` is `i-X`, disk `disk-X` is `d-X`, task `task-X` is `t-X`. Only the
//! Alibaba prefix + 8 lower-case letters or digits names an object; anything else names none.

use ikon_service::{ids, ImageState, ImageView, License, Task, TaskState, Visibility};
use serde_json::{json, Value};

const GIB: u64 = 1 << 30;

/// (service prefix, Alibaba prefix) of every object kind with an id.
pub const PREFIXES: &[(&str, &str)] = &[
    ("img", "m"),
    ("snap", "s"),
    ("ins", "i"),
    ("disk", "d"),
    ("task", "t"),
];

/// The Alibaba id of any service id (unknown prefixes are kept).
pub fn to_alibaba(id: &str) -> String {
    for (svc, ali) in PREFIXES {
        if let Some(rest) = id.strip_prefix(svc).and_then(|r| r.strip_prefix('-')) {
            return format!("{ali}-{rest}");
        }
    }
    id.to_string()
}

/// The service id (with prefix `svc_prefix`) an Alibaba id names, if any.
pub fn from_alibaba(svc_prefix: &str, id: &str) -> Option<String> {
    let (_, ali) = PREFIXES.iter().find(|(s, _)| *s == svc_prefix)?;
    let rest = id.strip_prefix(ali)?.strip_prefix('-')?;
    let svc = format!("{svc_prefix}-{rest}");
    ids::is_well_formed(svc_prefix, &svc).then_some(svc)
}

/// The Alibaba id of a service image id.
pub fn to_alibaba_id(id: &str) -> String {
    to_alibaba(id)
}

/// The service image id an Alibaba id names, if any.
pub fn from_alibaba_id(id: &str) -> Option<String> {
    from_alibaba("img", id)
}

fn snapshot_id(id: &str) -> String {
    to_alibaba(id)
}

/// Alibaba disk categories and the service disk types they are stored as.
const CATEGORIES: &[(&str, &str)] = &[
    ("cloud", "CLOUD_BASIC"),
    ("cloud_efficiency", "CLOUD_PREMIUM"),
    ("cloud_ssd", "CLOUD_SSD"),
    ("cloud_essd", "CLOUD_HSSD"),
    ("cloud_auto", "CLOUD_BSSD"),
    ("cloud_essd_entry", "CLOUD_TSSD"),
];

/// The service disk type of an Alibaba `Category`.
pub fn disk_type_of(category: &str) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .find(|(c, _)| *c == category)
        .map(|(_, t)| *t)
}

/// The Alibaba `Category` of a service disk type (`cloud_efficiency` for the others).
pub fn category_of(disk_type: &str) -> &'static str {
    CATEGORIES
        .iter()
        .find(|(_, t)| *t == disk_type)
        .map_or("cloud_efficiency", |(c, _)| *c)
}

/// `YYYY-MM-DDThh:mmZ`: the minute-precision times of instances and tasks.
pub fn minutes(ts: i64) -> String {
    let s = ids::iso8601(ts);
    format!("{}Z", &s[..16])
}

/// The `TaskAction` of a task kind; None for kinds Alibaba does not show as tasks.
pub fn task_action(kind: &str) -> Option<&'static str> {
    match kind {
        ikon_service::PUBLISH_KIND | "import" => Some("ImportImage"),
        "export" => Some("ExportImage"),
        _ => None,
    }
}

/// The task kinds behind a `TaskAction` (None: not an action of this API).
pub fn task_kinds(action: &str) -> Option<Vec<String>> {
    Some(match action {
        "ImportImage" => vec![ikon_service::PUBLISH_KIND.into(), "import".into()],
        "ExportImage" => vec!["export".into()],
        // Actions of the API that no task of this service performs.
        "RedeployInstance" | "ModifyDiskSpec" | "ArchiveSnapshot" => vec![],
        _ => return None,
    })
}

/// Every task kind shown through this API.
pub fn shown_task_kinds() -> Vec<String> {
    ["ImportImage", "ExportImage"]
        .iter()
        .filter_map(|a| task_kinds(a))
        .flatten()
        .collect()
}

/// The `TaskStatus` of a task.
pub fn task_status(s: TaskState) -> &'static str {
    match s {
        TaskState::Pending | TaskState::Running => "Processing",
        TaskState::Succeeded => "Finished",
        TaskState::Failed => "Failed",
        TaskState::Cancelled => "Cancelled",
    }
}

/// The task states behind a `TaskStatus` (None: not a status; such filters are ignored).
pub fn task_states(status: &str) -> Option<Vec<TaskState>> {
    Some(match status {
        "Processing" => vec![TaskState::Pending, TaskState::Running],
        "Finished" => vec![TaskState::Succeeded],
        "Failed" => vec![TaskState::Failed],
        "Cancelled" => vec![TaskState::Cancelled],
        _ => return None,
    })
}

fn unfinished(t: &Task) -> bool {
    matches!(t.state, TaskState::Pending | TaskState::Running)
}

/// One `Task` of DescribeTasks.
pub fn task(t: &Task) -> Value {
    json!({
        "TaskId": to_alibaba(&t.task_id),
        "TaskAction": task_action(&t.kind).unwrap_or(""),
        "TaskStatus": task_status(t.state),
        "SupportCancel": (unfinished(t) && ikon_service::tasks::cancellable(&t.kind)).to_string(),
        "CreationTime": minutes(t.created_at),
        "FinishedTime": if unfinished(t) { String::new() } else { minutes(t.updated_at) },
        "ResourceId": to_alibaba(&t.resource_id),
    })
}

/// DescribeTaskAttribute's body (without `RequestId`).
pub fn task_attribute(t: &Task, region: &str) -> Value {
    let mut v = task(t);
    let (ok, failed) = match t.state {
        TaskState::Succeeded => (1, 0),
        TaskState::Failed | TaskState::Cancelled => (0, 1),
        _ => (0, 0),
    };
    let op_status = match t.state {
        TaskState::Succeeded => "Success",
        TaskState::Failed => "Failed",
        TaskState::Cancelled => "Cancelled",
        _ => "Processing",
    };
    let progress = if t.state == TaskState::Succeeded {
        100
    } else {
        t.progress.clamp(0, 100)
    };
    let item = if t.resource_id.starts_with("img-") {
        "ImageId"
    } else {
        "ResourceId"
    };
    let extra = json!({
        "RegionId": region,
        "TaskProcess": format!("{progress}%"),
        "TotalCount": 1,
        "SuccessCount": ok,
        "FailedCount": failed,
        "OperationProgressSet": { "OperationProgress": [{
            "OperationStatus": op_status,
            "ErrorCode": if t.error.is_empty() { "" } else if t.state == TaskState::Cancelled { "TaskCancelled" } else { "TaskFailed" },
            "ErrorMsg": t.error,
            "RelatedItemSet": { "RelatedItem": [
                { "Name": item, "Value": to_alibaba(&t.resource_id) },
            ]},
        }]},
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.remove("ResourceId");
        m.extend(e);
    }
    v
}

/// The Alibaba status of an image.
pub fn status(v: &ImageView) -> &'static str {
    match v.state() {
        ImageState::Normal if v.image.deprecated => "Deprecated",
        s if s.usable() => "Available",
        s if s.in_progress() => "Creating",
        s if s.failed() => "CreateFailed",
        _ => "UnAvailable",
    }
}

/// `ImageOwnerAlias` of a view.
pub fn owner_alias(v: Visibility) -> &'static str {
    match v {
        Visibility::Private => "self",
        Visibility::Shared => "others",
        Visibility::Public => "system",
        Visibility::Market => "marketplace",
    }
}

/// The device name of disk slot `i` (`/dev/xvda` for the system disk).
pub fn device(i: usize) -> String {
    let letter = u8::try_from(i)
        .ok()
        .filter(|n| *n < 26)
        .map_or('z', |n| char::from(b'a' + n));
    format!("/dev/xvd{letter}")
}

/// One `Image` structure.
pub fn image(v: &ImageView) -> Value {
    let i = &v.image;
    let st = status(v);
    let progress = match (st, i.sync_percent) {
        ("Creating", Some(p)) => format!("{}%", p.clamp(0, 100)),
        ("Creating", None) => "0%".to_string(),
        _ => "100%".to_string(),
    };
    let mappings: Vec<Value> = i
        .disks
        .iter()
        .enumerate()
        .map(|(n, d)| {
            json!({
                "Device": device(n),
                "Type": if d.usage == "DATA_DISK" { "data" } else { "system" },
                "SnapshotId": snapshot_id(&d.snapshot_id),
                "Size": d.size_bytes.div_ceil(GIB).to_string(),
                "Format": "",
                "ImportOSSBucket": "",
                "ImportOSSObject": "",
                "Progress": progress,
                "RemainTime": 0,
                "Encrypted": false,
            })
        })
        .collect();
    let tags: Vec<Value> = i
        .tags
        .iter()
        .map(|(k, v)| json!({ "TagKey": k, "TagValue": v }))
        .collect();
    let architecture = match i.architecture.as_str() {
        "arm" | "aarch64" => "arm64",
        a => a,
    };
    json!({
        "ImageId": to_alibaba_id(&i.image_id),
        "ImageName": i.name,
        "ImageVersion": "",
        "ImageFamily": i.family,
        "Description": i.description,
        "Size": i.size_bytes.div_ceil(GIB),
        "ImageOwnerAlias": owner_alias(v.visibility),
        "ImageOwnerId": i.owner.parse::<u64>().unwrap_or(0),
        "OSName": i.os_name,
        "OSNameEn": i.os_name,
        "OSType": i.os_type.to_ascii_lowercase(),
        "Platform": i.platform,
        "Architecture": architecture,
        "Status": st,
        "Progress": progress,
        "Usage": "none",
        "CreationTime": ids::iso8601(i.created_at),
        "IsCopied": false,
        "IsPublic": false,
        "IsSelfShared": if v.visibility == Visibility::Private && i.share_count > 0 { "true" } else { "false" },
        "IsSubscribed": false,
        "IsSupportCloudinit": i.cloudinit,
        "IsSupportIoOptimized": true,
        "LoginAsNonRootSupported": false,
        "Usable": st == "Available",
        "ProductCode": "",
        "SupplierName": "",
        "ResourceGroupId": "",
        "LicenseType": if v.license() == License::Byol { "BYOL" } else { "Auto" },
        "BootMode": "BIOS",
        "DiskDeviceMappings": { "DiskDeviceMapping": mappings },
        "Tags": { "Tag": tags },
        "Features": { "NvmeSupport": "unsupported", "ImdsSupport": "v1" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_both_ways() {
        assert_eq!(to_alibaba_id("img-abcd1234"), "m-abcd1234");
        assert_eq!(
            from_alibaba_id("m-abcd1234").as_deref(),
            Some("img-abcd1234")
        );
        for bad in [
            "img-abcd1234",
            "m-ABCD1234",
            "m-abc",
            "ubuntu_16_0402_64_20G_alibase.vhd",
            "",
        ] {
            assert_eq!(from_alibaba_id(bad), None, "{bad}");
        }
        assert_eq!(to_alibaba("task-abcd1234"), "t-abcd1234");
        assert_eq!(to_alibaba("ins-abcd1234"), "i-abcd1234");
        assert_eq!(to_alibaba("other"), "other");
        assert_eq!(
            from_alibaba("task", "t-abcd1234").as_deref(),
            Some("task-abcd1234")
        );
        assert_eq!(from_alibaba("task", "m-abcd1234"), None);
        assert_eq!(from_alibaba("nope", "t-abcd1234"), None);
        assert_eq!(minutes(1_700_000_000), "2023-11-14T22:13Z");
        assert_eq!(disk_type_of("cloud_essd"), Some("CLOUD_HSSD"));
        assert_eq!(disk_type_of("ssd"), None);
        assert_eq!(category_of("CLOUD_SSD"), "cloud_ssd");
        assert_eq!(category_of("LOCAL_BASIC"), "cloud_efficiency");
        assert_eq!(device(0), "/dev/xvda");
        assert_eq!(device(1), "/dev/xvdb");
    }
}
