//! `ikon img inspect` / `ikon img precheck` end to end: exit codes 0 (importable), 1 (a rule
//! fails), 2 (unreadable), and the JSON shape. Fixtures from scripts/fixtures/make-linux.sh
//! (run scripts/install-guest-deps.sh if a tool is missing: the test fails, never skips).

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str, env: &[(&str, &str)]) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("ikon-cli-inspect-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let raw = dir.join("disk.raw");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fixtures/make-linux.sh");
    let o = Command::new("bash")
        .arg(script)
        .arg(&raw)
        .arg("ubuntu2204")
        .envs(env.iter().copied())
        .env("TMPDIR", &dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        o.status.success(),
        "make-linux.sh failed (run scripts/install-guest-deps.sh): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (dir, raw)
}

fn ikon(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ikon"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
    )
}

#[test]
fn precheck_exit_codes_and_json() {
    let (d1, ok) = fixture("ok", &[]);
    let (d2, gpt) = fixture("gpt", &[("TABLE", "gpt")]);
    let ok = ok.to_string_lossy().to_string();
    let gpt = gpt.to_string_lossy().to_string();
    let (c, out) = ikon(&["img", "precheck", "--rules", "tencent", &ok]);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("importable"));
    let (c, out) = ikon(&[
        "img", "precheck", "--rules", "tencent", &gpt, "--output", "json",
    ]);
    assert_eq!(c, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["importable"], false);
    let pt = v["verdicts"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == "partition-table"))
        .cloned();
    assert_eq!(
        pt.map(|r| r["verdict"].clone()),
        Some(serde_json::json!("fail"))
    );
    let (c, out) = ikon(&["img", "inspect", &ok, "--output", "json"]);
    assert_eq!(c, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["operating_systems"][0]["linux"]["distro"], "ubuntu");
    assert_eq!(v["operating_systems"][0]["osinfo"], "ubuntu22.04");
    assert_eq!(v["partition_table"]["kind"], "mbr");
    let (c, _) = ikon(&["img", "precheck", "--rules", "alibaba", &ok]);
    assert_eq!(c, 0);
    let (c, _) = ikon(&[
        "img",
        "precheck",
        "--rules",
        "tencent",
        "/nonexistent/disk.raw",
    ]);
    assert_eq!(c, 2);
    let (c, _) = ikon(&["img", "precheck", "--rules", "nosuchcloud", &ok]);
    assert_eq!(c, 2);
    let _ = std::fs::remove_dir_all(d1);
    let _ = std::fs::remove_dir_all(d2);
}

#[test]
fn precheck_says_a_blank_disk_holds_no_filesystem() {
    let dir = std::env::temp_dir().join(format!("ikon-cli-blank-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let blank = dir.join("blank.raw");
    let text = dir.join("notes.txt");
    std::fs::File::create(&blank)
        .and_then(|f| f.set_len(64 << 20))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&text, "not a disk image\n").unwrap_or_else(|e| panic!("{e}"));
    for f in [&blank, &text] {
        let (c, out) = ikon(&[
            "img",
            "precheck",
            "--rules",
            "tencent",
            &f.to_string_lossy(),
        ]);
        assert_eq!(c, 1, "{out}");
        assert!(out.contains("no filesystem was found"), "{out}");
        assert!(!out.contains("filesystem on the whole disk"), "{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inspect_reads_like_a_report_for_people() {
    let (dir, raw) = fixture("human", &[]);
    let (c, out) = ikon(&["img", "inspect", &raw.to_string_lossy()]);
    assert_eq!(c, 0, "{out}");
    for want in [
        "partition table: MBR (512-byte sectors)",
        "  partition 1: ext4,",
        "operating system: linux",
        "  osinfo: ubuntu22.04",
        "virtio drivers: block yes, network yes",
        "network interfaces: eth0",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    for debug in ["Mbr", "Some(", "None", "blk="] {
        assert!(!out.contains(debug), "{debug:?} in:\n{out}");
    }
    let blank = dir.join("blank.raw");
    std::fs::File::create(&blank)
        .and_then(|f| f.set_len(16 << 20))
        .unwrap_or_else(|e| panic!("{e}"));
    let (c, out) = ikon(&["img", "inspect", &blank.to_string_lossy()]);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("partition table: none"), "{out}");
    assert!(out.contains("filesystems: none found"), "{out}");
    assert!(!out.contains("partition 0"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
