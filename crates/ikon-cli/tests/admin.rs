//! `ikon admin`: accounts, publishing (public and custom images, OS fields from inspection,
//! quota refusal with exit status 1 and the Tencent code on stderr, deduplicated storage),
//! and garbage collection.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ikon() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ikon"))
}

fn run(args: &[&str]) -> Output {
    Command::new(ikon())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ikon-admin-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    d
}

fn qemu_img(args: &[&str]) {
    let o = Command::new("qemu-img")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("qemu-img is required: {e}"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

#[test]
fn publish_quota_and_gc() {
    let d = tmp();
    let data = d.join("data");
    let cfg = d.join("ikon.toml");
    std::fs::write(&cfg, "[limits]\ncustom_images_per_region = 1\n")
        .unwrap_or_else(|e| panic!("{e}"));
    // A 32 MiB disk with 3 MiB of data, as qcow2.
    let raw = d.join("disk.raw");
    let mut bytes = vec![0u8; 32 << 20];
    for (i, b) in bytes[1 << 20..4 << 20].iter_mut().enumerate() {
        *b = u8::try_from(i % 251).unwrap_or(0);
    }
    std::fs::write(&raw, bytes).unwrap_or_else(|e| panic!("{e}"));
    let qcow = d.join("disk.qcow2");
    qemu_img(&["convert", "-O", "qcow2", s(&raw), s(&qcow)]);
    let base = ["admin", "--data-dir", s(&data), "--config", s(&cfg)];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra.iter())
            .map(|x| x.to_string())
            .collect()
    };
    let runv = |v: Vec<String>| run(&v.iter().map(String::as_str).collect::<Vec<_>>());

    let acc = json(&runv(with(&[
        "account", "create", "tenant", "--output", "json",
    ])));
    let id = acc["AccountId"].as_str().unwrap_or_default().to_string();
    assert_eq!(id.len(), 12);
    assert!(acc["SecretId"]
        .as_str()
        .is_some_and(|k| k.starts_with("AKID")));
    assert!(acc["SecretKey"].as_str().is_some_and(|k| k.len() == 32));
    let dup = runv(with(&["account", "create", "tenant", "--output", "json"]));
    assert!(!dup.status.success());

    let p = json(&runv(with(&[
        "image",
        "publish",
        "--region",
        "ap-guangzhou",
        "--name",
        "Public 1",
        s(&qcow),
        "--output",
        "json",
    ])));
    assert!(p["ImageId"]
        .as_str()
        .is_some_and(|i| i.starts_with("img-") && i.len() == 12));
    assert_eq!(
        (
            p["Format"].as_str(),
            p["VirtualSize"].as_u64(),
            p["NewBytes"].as_u64()
        ),
        (Some("qcow2"), Some(32 << 20), Some(3 << 20))
    );
    let c = json(&runv(with(&[
        "image",
        "publish",
        "--region",
        "ap-guangzhou",
        "--name",
        "Mine",
        "--account",
        &id,
        s(&raw),
        "--output",
        "json",
    ])));
    assert_eq!(
        c["NewBytes"].as_u64(),
        Some(0),
        "same content: deduplicated"
    );
    // Quota 1: the second custom image in the region is refused, exit 1, code on stderr.
    let over = runv(with(&[
        "image",
        "publish",
        "--region",
        "ap-guangzhou",
        "--name",
        "Mine 2",
        "--account",
        &id,
        s(&raw),
        "--output",
        "json",
    ]));
    assert_eq!(over.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&over.stderr).contains("ImageQuotaLimitExceeded"));
    // Other regions have their own quota; unknown accounts and regions are refused.
    json(&runv(with(&[
        "image",
        "publish",
        "--region",
        "ap-beijing",
        "--name",
        "Mine",
        "--account",
        &id,
        s(&raw),
        "--output",
        "json",
    ])));
    assert_eq!(
        runv(with(&[
            "image",
            "publish",
            "--region",
            "moon-1",
            "--name",
            "x",
            s(&raw)
        ]))
        .status
        .code(),
        Some(1)
    );
    assert_eq!(
        runv(with(&[
            "image",
            "publish",
            "--region",
            "ap-beijing",
            "--name",
            "x",
            "--account",
            "999",
            s(&raw)
        ]))
        .status
        .code(),
        Some(1)
    );
    // A file that is not a disk image (an ISO-looking qcow2 header would be refused too).
    let junk = d.join("junk.qcow2");
    std::fs::write(&junk, b"QFI\xfbnot really").unwrap_or_else(|e| panic!("{e}"));
    let bad = runv(with(&[
        "image",
        "publish",
        "--region",
        "ap-beijing",
        "--name",
        "junk",
        s(&junk),
    ]));
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let g = json(&runv(with(&["gc", "--output", "json"])));
    assert_eq!(
        (g["LiveChunks"].as_u64(), g["DeletedChunks"].as_u64()),
        (Some(3), Some(0))
    );
    fsck_finds_damage(&data, &runv(with(&["fsck", "--output", "json"])), &|| {
        runv(with(&["fsck", "--output", "json"]))
    });
}

/// `ikon admin fsck` on the store `publish_quota_and_gc` left: clean; then a damaged chunk,
/// a missing chunk and an orphan are each reported, with exit 1.
fn fsck_finds_damage(data: &Path, clean: &Output, fsck: &dyn Fn() -> Output) {
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let f = json(clean);
    assert_eq!(f["Clean"], true, "{f}");
    assert_eq!(f["Chunks"].as_u64(), Some(3), "{f}");
    assert!(f["Manifests"].as_u64().is_some_and(|n| n >= 3), "{f}");
    assert_eq!(f["OrphanChunks"].as_u64(), Some(0), "{f}");
    // The chunk files: data/…/chunks/ab/cd/<hash>.
    let mut chunks = Vec::new();
    let mut dirs = vec![data.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.components().any(|c| c.as_os_str() == "chunks")
                && p.file_name().is_some_and(|n| n.len() == 64)
            {
                chunks.push(p);
            }
        }
    }
    chunks.sort();
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    // One flipped byte, one chunk gone, one stray chunk beside them.
    let mut bytes = std::fs::read(&chunks[0]).unwrap_or_else(|e| panic!("{e}"));
    bytes[100] ^= 0xff;
    std::fs::write(&chunks[0], &bytes).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(&chunks[1]).unwrap_or_else(|e| panic!("{e}"));
    let name = chunks[2]
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let last = if name.ends_with('0') { '1' } else { '0' };
    let stray = chunks[2].with_file_name(format!("{}{last}", &name[..63]));
    std::fs::copy(&chunks[2], &stray).unwrap_or_else(|e| panic!("{e}"));
    let o = fsck();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let f: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(f["Clean"], false, "{f}");
    let named = |key: &str, p: &Path| {
        let h = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        f[key]
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0] == h.as_str())
    };
    assert!(named("CorruptChunks", &chunks[0]), "{f}");
    assert!(named("MissingChunks", &chunks[1]), "{f}");
    assert_eq!(f["OrphanChunks"].as_u64(), Some(1), "{f}");
}

#[test]
fn presets_choose_the_region_ids() {
    let d = tmp();
    let data = d.join("data");
    let raw = d.join("disk.raw");
    std::fs::write(&raw, vec![7u8; 1 << 20]).unwrap_or_else(|e| panic!("{e}"));
    let publish = |preset: &[&str], region: &str| {
        let mut args = vec!["admin", "--data-dir", s(&data)];
        args.extend_from_slice(preset);
        args.extend_from_slice(&[
            "image",
            "publish",
            "--region",
            region,
            "--name",
            region,
            s(&raw),
            "--output",
            "json",
        ]);
        run(&args)
    };
    // `--preset alibaba`, or `preset = "alibaba"` in the file: Alibaba's region ids.
    json(&publish(&["--preset", "alibaba"], "cn-hangzhou"));
    let cfg = d.join("ikon.toml");
    std::fs::write(&cfg, "preset = \"alibaba\"\n").unwrap_or_else(|e| panic!("{e}"));
    json(&publish(&["--config", s(&cfg)], "ap-southeast-1"));
    let o = publish(&["--preset", "alibaba"], "ap-guangzhou");
    assert!(!o.status.success());
    // The default (and the command line over the file) is Tencent's.
    json(&publish(&[], "ap-guangzhou"));
    json(&publish(
        &["--config", s(&cfg), "--preset", "tencent"],
        "ap-beijing",
    ));
    let o = publish(&["--preset", "aws"], "ap-guangzhou");
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("preset"));
}
