//! Service results in the shapes the Tencent SDK models declare (reference §2.1): exact
//! field names and JSON types.

use ikon_service::{ids, ImageKind, ImageView, Visibility};
use serde_json::{json, Value};

const GIB: u64 = 1 << 30;

/// Bytes to whole GiB, rounded up.
pub fn gib(bytes: u64) -> u64 {
    bytes.div_ceil(GIB)
}

/// `ImageDescription`: the Image structure has no field for why an image failed, so a
/// failed image's description leads with its state and reason (every failed import rule),
/// followed by the owner's own description.
fn description(v: &ImageView) -> String {
    let i = &v.image;
    let failed = v.state().failed() && !i.state_reason.is_empty();
    match (failed, i.description.is_empty()) {
        (false, _) => i.description.clone(),
        (true, true) => format!("{}: {}", i.state, i.state_reason),
        (true, false) => format!("{}: {} | {}", i.state, i.state_reason, i.description),
    }
}

/// One `Image` structure.
pub fn image(v: &ImageView) -> Value {
    let i = &v.image;
    let image_type = match v.visibility {
        Visibility::Private => "PRIVATE_IMAGE",
        Visibility::Shared => "SHARED_IMAGE",
        Visibility::Public => "PUBLIC_IMAGE",
        Visibility::Market => "MARKET_IMAGE",
    };
    let creator = if v.kind() == ImageKind::Public {
        "tencentcloud".to_string()
    } else {
        i.owner.clone()
    };
    let snapshots: Vec<Value> = i
        .disks
        .iter()
        .map(|d| json!({ "SnapshotId": d.snapshot_id, "DiskUsage": d.usage, "DiskSize": gib(d.size_bytes) }))
        .collect();
    let tags: Vec<Value> = i
        .tags
        .iter()
        .map(|(k, v)| json!({ "Key": k, "Value": v }))
        .collect();
    json!({
        "ImageId": i.image_id,
        "OsName": i.os_name,
        "ImageType": image_type,
        "CreatedTime": ids::iso8601(i.created_at),
        "ImageName": i.name,
        "ImageDescription": description(v),
        "ImageSize": gib(i.size_bytes),
        "Architecture": i.architecture,
        "ImageState": i.state,
        "Platform": i.platform,
        "ImageCreator": creator,
        "ImageSource": i.source,
        "SyncPercent": i.sync_percent,
        "IsSupportCloudinit": i.cloudinit,
        "SnapshotSet": snapshots,
        "Tags": tags,
        "LicenseType": i.license_type,
        "ImageFamily": i.family,
        "ImageDeprecated": i.deprecated,
    })
}
