//! Service results in the shapes the Alibaba SDK models declare (reference §2.1): exact
//! field names and JSON types (`Size` a number, `DiskDeviceMapping.Size` and `IsSelfShared`
//! strings, lists wrapped as `{"Image": [...]}`), and the id mapping between dialects.
//!
//! Id mapping: an image `img-abcd1234` is `m-abcd1234` here (snapshot `snap-X` is `s-X`).
//! Only `m-` + 8 lower-case letters or digits names an image; anything else names none.

use ikon_service::{ids, state, ImageView, Visibility};
use serde_json::{json, Value};

const GIB: u64 = 1 << 30;

/// The Alibaba id of a service image id.
pub fn to_alibaba_id(id: &str) -> String {
    match id.strip_prefix("img-") {
        Some(rest) => format!("m-{rest}"),
        None => id.to_string(),
    }
}

/// The service image id an Alibaba id names, if any.
pub fn from_alibaba_id(id: &str) -> Option<String> {
    let rest = id.strip_prefix("m-")?;
    let svc = format!("img-{rest}");
    ids::is_well_formed("img", &svc).then_some(svc)
}

fn snapshot_id(id: &str) -> String {
    match id.strip_prefix("snap-") {
        Some(rest) => format!("s-{rest}"),
        None => id.to_string(),
    }
}

/// The Alibaba status of an image.
pub fn status(img: &ikon_service::Image) -> &'static str {
    match img.state.as_str() {
        state::NORMAL if img.deprecated => "Deprecated",
        state::NORMAL | state::SYNCING => "Available",
        state::CREATING | state::IMPORTING => "Creating",
        state::CREATEFAILED | state::IMPORTFAILED => "CreateFailed",
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

fn device(i: usize) -> String {
    let letter = u8::try_from(i)
        .ok()
        .filter(|n| *n < 26)
        .map_or('z', |n| char::from(b'a' + n));
    format!("/dev/xvd{letter}")
}

/// One `Image` structure.
pub fn image(v: &ImageView) -> Value {
    let i = &v.image;
    let st = status(i);
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
        "LicenseType": if i.license_type == "BYOL" { "BYOL" } else { "Auto" },
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
        assert_eq!(device(0), "/dev/xvda");
        assert_eq!(device(1), "/dev/xvdb");
    }
}
