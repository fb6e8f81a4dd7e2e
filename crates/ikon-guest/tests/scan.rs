//! The hygiene scan (`ikon_guest::scan`) on fixtures built at test time: one clean base per
//! OS per run (scripts/fixtures/make-linux.sh ubuntu2204, make-windows.sh generalised), copied
//! (`cp --sparse=always`) per case, with leftovers planted one at a time and all at once —
//! into ext4 with `debugfs -w` at the root partition's offset, into NTFS with ntfscp and
//! hivexregedit on the extracted C: partition — then scanned: each case asserts exactly the
//! expected (id, path) set. Every planted file is read back through Ikon's own readers
//! first, so a plant that silently failed cannot pass a "no finding" case. Also: a real
//! debootstrapped Debian as a second clean Linux base, the scan through qcow2, and the bytes
//! a scan reads on a 50 GiB disk. Missing tools make the tests FAIL (run
//! scripts/install-guest-deps.sh).

use ikon_guest::scan::{self, Scan, ScanConfig, Severity};
use ikon_guest::vfs::GuestFs;
use ikon_guest::Inspection;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// Byte offset of make-linux.sh's root partition (sector 2048).
const LINUX_ROOT: u64 = 2048 * 512;
/// Byte offset and size of make-windows.sh's C: (sectors 133120 + 380928).
const WIN_C: (u64, u64) = (133_120 * 512, 380_928 * 512);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails the test unless every tool of the space-separated `tools` is installed.
fn need(tools: &str) {
    for tool in tools.split(' ') {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("PATH=$PATH:/usr/sbin:/sbin command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "{tool} is missing: run scripts/install-guest-deps.sh");
    }
}

/// Runs `cmd` (with /usr/sbin on PATH), failing the test on error; returns stdout.
fn run(cmd: &mut Command, what: &str) -> Vec<u8> {
    let path = std::env::var("PATH").unwrap_or_default() + ":/usr/sbin:/sbin";
    let out = cmd
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (run scripts/install-guest-deps.sh)"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs the shell `script` with positional parameters `args` ($1, $2, ...).
fn sh(script: &str, args: &[&dyn AsRef<OsStr>]) -> Vec<u8> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script, "sh"]).args(args);
    run(&mut cmd, script)
}

/// This run's scratch directory; directories of earlier runs whose process is gone are
/// removed first (the shared bases live until the next run).
fn work() -> &'static Path {
    static W: OnceLock<PathBuf> = OnceLock::new();
    W.get_or_init(|| {
        let tmp = std::env::temp_dir();
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(pid) = name.strip_prefix("ikon-guest-scan-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let d = tmp.join(format!("ikon-guest-scan-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        d
    })
}

/// A fresh case directory `name`; returns the path of its disk.raw.
fn case_dir(name: &str) -> PathBuf {
    let d = work().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
    d.join("disk.raw")
}

fn done(raw: &Path) {
    let _ = std::fs::remove_dir_all(raw.parent().unwrap_or(raw));
}

/// Runs scripts/fixtures/`script` DISK `args` in the case directory `name`.
fn fixture(name: &str, script: &str, args: &[&dyn AsRef<OsStr>], env: &[(&str, &str)]) -> PathBuf {
    let raw = case_dir(name);
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/fixtures").join(script))
        .arg(&raw)
        .args(args)
        .envs(env.iter().copied())
        .env("TMPDIR", raw.parent().unwrap_or(&raw));
    run(&mut cmd, script);
    raw
}

fn make_linux(name: &str, args: &[&dyn AsRef<OsStr>], env: &[(&str, &str)]) -> PathBuf {
    need("mkfs.ext4 debugfs sfdisk mkswap qemu-img");
    fixture(name, "make-linux.sh", args, env)
}

fn make_windows(name: &str, env: &[(&str, &str)]) -> PathBuf {
    need("mkntfs ntfscp ntfscat hivexregedit gcc sfdisk qemu-img");
    fixture(name, "make-windows.sh", &[], env)
}

/// The clean Ubuntu 22.04 base (has cloud-init), built once per run.
fn linux_base() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| make_linux("base-linux", &[&"ubuntu2204"], &[]))
}

/// The clean, generalised Windows base, built once per run.
fn windows_base() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| make_windows("base-windows", &[]))
}

/// A fresh sparse copy of `base` in the case directory `name`.
fn copy(base: &Path, name: &str) -> PathBuf {
    let raw = case_dir(name);
    sh(r#"cp --sparse=always "$1" "$2""#, &[&base, &raw]);
    raw
}

/// `raw` converted to qcow2 beside it.
fn qcow2(raw: &Path) -> PathBuf {
    let q = raw.with_extension("qcow2");
    sh(r#"qemu-img convert -f raw -O qcow2 "$1" "$2""#, &[&raw, &q]);
    q
}

fn open(path: &Path) -> Box<dyn ikon_disk::DiskImage> {
    ikon_disk::open(path, &ikon_disk::OpenOptions::default())
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn inspect(img: &dyn ikon_disk::BlockDevice, fmt: &str) -> Inspection {
    ikon_guest::inspect(img, fmt).unwrap_or_else(|e| panic!("inspect: {e}"))
}

/// Inspects and scans an image file under the default configuration.
fn scan_file(path: &Path) -> Scan {
    let img = open(path);
    let ins = inspect(img.as_ref(), img.info().format.name());
    scan::scan(img.as_ref(), &ins, &ScanConfig::default())
}

/// Asserts the scan read one OS without problems and found exactly `expect`, each at its
/// check's default severity, with a message that names the fix.
fn assert_findings(s: &Scan, os: &str, expect: &[(&str, &str)]) {
    assert_eq!(s.scanned, [os], "{s:?}");
    assert!(s.problems.is_empty(), "problems: {:?}", s.problems);
    let got: BTreeSet<(&str, &str)> = s
        .findings
        .iter()
        .map(|f| (f.id.as_str(), f.path.as_str()))
        .collect();
    let want: BTreeSet<(&str, &str)> = expect.iter().copied().collect();
    assert_eq!(got, want, "findings: {:#?}", s.findings);
    assert_eq!(s.findings.len(), expect.len(), "{:#?}", s.findings);
    for f in &s.findings {
        let c = scan::check(&f.id).unwrap_or_else(|| panic!("unknown id {}", f.id));
        assert_eq!(f.severity, c.default, "{f:?}");
        assert!(f.message.ends_with(c.fix), "{f:?}");
    }
}

// ---------------------------------------------------------------- Linux

/// A change to a guest filesystem.
enum Op {
    /// Write a file (parents created, an existing file replaced).
    Put(&'static str, Vec<u8>),
    /// Remove a file.
    Rm(&'static str),
    /// Make a symlink (path, target); the parent must exist or be made by an earlier Put.
    Ln(&'static str, &'static str),
}

fn put(path: &'static str, data: &str) -> Op {
    Op::Put(path, data.as_bytes().to_vec())
}

/// Applies `ops` to the ext4 root of `raw` with debugfs at the partition's offset (no
/// extraction), then reads every change back through `ikon_guest::ext4`.
fn plant_linux(raw: &Path, ops: &[Op]) {
    let dir = raw.parent().unwrap_or(raw);
    let mut cmds = String::new();
    let mut made = BTreeSet::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Put(path, data) => {
                let mut parent = String::new();
                let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
                for c in &comps[..comps.len() - 1] {
                    parent = format!("{parent}/{c}");
                    if made.insert(parent.clone()) {
                        cmds += &format!("mkdir \"{parent}\"\n");
                    }
                }
                let local = dir.join(format!("plant-{i}"));
                std::fs::write(&local, data).unwrap_or_else(|e| panic!("{e}"));
                cmds += &format!("rm \"{path}\"\nwrite \"{}\" \"{path}\"\n", local.display());
            }
            Op::Rm(path) => cmds += &format!("rm \"{path}\"\n"),
            Op::Ln(path, target) => cmds += &format!("symlink \"{path}\" \"{target}\"\n"),
        }
    }
    let f = dir.join("debugfs.cmds");
    std::fs::write(&f, cmds).unwrap_or_else(|e| panic!("{e}"));
    // Errors for directories that already exist and files not there to replace are
    // expected; what matters is checked below.
    let target = format!("{}?offset={LINUX_ROOT}", raw.display());
    sh(r#"debugfs -w -f "$1" "$2""#, &[&f, &target]);
    let img = open(raw);
    let ins = inspect(img.as_ref(), "raw");
    let root = ins.filesystems.iter().find(|f| f.offset == LINUX_ROOT);
    let size = root.unwrap_or_else(|| panic!("no root: {ins:?}")).size;
    let fs = ikon_guest::ext4::Ext4::open(img.as_ref(), LINUX_ROOT, size)
        .unwrap_or_else(|e| panic!("ext4: {e}"));
    for op in ops {
        match op {
            Op::Put(path, data) => {
                let got = fs.read_file(path, 1 << 20).ok().flatten();
                assert_eq!(got.as_ref(), Some(data), "{path} was not planted");
            }
            Op::Rm(path) => assert!(!fs.exists(path), "{path} was not removed"),
            Op::Ln(path, target) => {
                let n = fs.resolve(path, false).ok().flatten();
                let t = n.and_then(|n| fs.read_link(&n).ok());
                assert_eq!(t.as_deref(), Some(*target), "{path} was not linked");
            }
        }
    }
}

const SHADOW_HASH: &str = "root:$6$rounds=5000$Ikon.salt$Zb3a1dVbXw0m0v2QkUeYzT9m4cF1H6rR8sN5pL7qW2eJ0xK3yA6tG9uI4oP1sD8fZ5hV2nB7cM0lX3jQ6kE1w.:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\nsyslog:!:19700:0:99999:7:::\n";
const SHADOW_EMPTY: &str =
    "root:*:19700:0:99999:7:::\nalice::19700:0:99999:7:::\nbob:!$6$x$y:19700:0:99999:7:::\n";
const AUTH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGl6b24tdGVzdC1rZXktbm90LXJlYWwtYXQtYWxs maker@laptop\n";
const AUTH_COMMENTED: &str =
    "# Keys are installed by cloud-init at first boot.\n\n  # ssh-rsa AAAAB3Nza old@key\n";
const OPENSSH_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n";
const RSA_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtest+not+a+real+key\n-----END RSA PRIVATE KEY-----\n";
const PKCS8_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAAtest\n-----END PRIVATE KEY-----\n";
const CERT: &str =
    "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEtest\n-----END CERTIFICATE-----\n";
const SSHD_MAIN: &str = "# Ubuntu-like\nInclude sshd_config.d/*.conf\n\nPermitRootLogin yes\nKbdInteractiveAuthentication no\nUsePAM yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n";
const SSHD: &str = "/etc/ssh/sshd_config";
const DROPIN: &str = "/etc/ssh/sshd_config.d/50-cloud-init.conf";
/// The fixture's dpkg status after `apt purge cloud-init`.
const DPKG_NO_CLOUD_INIT: &str = "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.1-6ubuntu1\nDescription: GNU Bourne Again SHell\n\nPackage: linux-image-5.15.0-91-generic\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.15.0-91.101\nDescription: Signed kernel image generic\n\n";
const CREDS: &str = "cloud-credentials";

/// Single-file Linux plants: (path, content, finding id).
const PLANTS: &[(&str, &str, &str)] = &[
    ("/root/.ssh/authorized_keys", AUTH_KEY, "authorized-keys"),
    ("/etc/ssh/ssh_host_ed25519_key", OPENSSH_KEY, "ssh-host-key"),
    ("/home/alice/.ssh/id_rsa", RSA_KEY, "private-key"),
    ("/home/alice/deploy/key.pem", PKCS8_KEY, "private-key"),
    (
        "/root/.bash_history",
        "mysql -u root -phunter2\n",
        "shell-history",
    ),
    (
        "/home/alice/.aws/credentials",
        "[default]\naws_access_key_id=AKIAX\n",
        CREDS,
    ),
    (
        "/root/.tccli/default.credential",
        "{\"secretId\": \"AKIDx\"}\n",
        CREDS,
    ),
    (
        "/root/.aliyun/config.json",
        "{\"profiles\": [{\"mode\": \"AK\"}]}\n",
        CREDS,
    ),
    (
        "/root/.config/gcloud/credentials.db",
        "SQLite format 3\0",
        CREDS,
    ),
    (
        "/root/.kube/config",
        "apiVersion: v1\nkind: Config\nusers: []\n",
        CREDS,
    ),
    (
        "/etc/machine-id",
        "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c\n",
        "machine-id",
    ),
];

/// Every positive Linux plant at once, and the (id, path) each must give.
fn linux_everything() -> (Vec<Op>, Vec<(&'static str, &'static str)>) {
    let mut ops: Vec<Op> = PLANTS.iter().map(|(p, data, _)| put(p, data)).collect();
    let mut expect: Vec<_> = PLANTS.iter().map(|(p, _, id)| (*id, *p)).collect();
    let shadow = format!("{SHADOW_HASH}alice::19700:0:99999:7:::\n");
    ops.extend([
        Op::Put("/etc/shadow", shadow.into_bytes()),
        put(SSHD, SSHD_MAIN),
        put(DROPIN, "PasswordAuthentication yes\n"),
        Op::Rm("/etc/cloud/cloud.cfg"),
        put("/var/lib/dpkg/status", DPKG_NO_CLOUD_INIT),
    ]);
    expect.extend([
        ("password-hash", "/etc/shadow"),
        ("empty-password", "/etc/shadow"),
        ("sshd-root-password", SSHD),
        ("no-first-boot-agent", "/etc/cloud/cloud.cfg"),
    ]);
    (ops, expect)
}

/// Plants `ops` into a copy of the Linux base, scans it and checks `expect`.
fn linux_case(name: &str, ops: &[Op], expect: &[(&str, &str)]) -> Scan {
    let raw = copy(linux_base(), name);
    plant_linux(&raw, ops);
    let s = scan_file(&raw);
    assert_findings(&s, "linux", expect);
    done(&raw);
    s
}

#[test]
fn linux_clean_base_has_no_findings() {
    let s = linux_case("clean", &[], &[]);
    assert_eq!(s.worst(), None);
}

#[test]
fn linux_password_hash_in_shadow() {
    let ops = [put("/etc/shadow", SHADOW_HASH)];
    linux_case("hash", &ops, &[("password-hash", "/etc/shadow")]);
}

#[test]
fn linux_empty_password_in_shadow_and_passwd() {
    let ops = [put("/etc/shadow", SHADOW_EMPTY)];
    linux_case("empty", &ops, &[("empty-password", "/etc/shadow")]);
    let ops = [put("/etc/passwd", "root::0:0:root:/root:/bin/bash\n")];
    linux_case("empty-passwd", &ops, &[("empty-password", "/etc/passwd")]);
}

#[test]
fn linux_authorized_keys_only_when_a_key_line() {
    let p = "/root/.ssh/authorized_keys";
    linux_case("authkeys", &[put(p, AUTH_KEY)], &[("authorized-keys", p)]);
    linux_case("authkeys-commented", &[put(p, AUTH_COMMENTED)], &[]);
}

#[test]
fn linux_ssh_host_key() {
    let p = "/etc/ssh/ssh_host_ed25519_key";
    let ops = [
        put(p, OPENSSH_KEY),
        put("/etc/ssh/ssh_host_ed25519_key.pub", AUTH_KEY),
    ];
    linux_case("hostkey", &ops, &[("ssh-host-key", p)]);
}

#[test]
fn linux_private_keys_in_a_home_but_not_public_keys_or_certificates() {
    let ops = [
        put("/home/alice/.ssh/id_rsa", RSA_KEY),
        put("/home/alice/.ssh/id_rsa.pub", AUTH_KEY),
        put("/home/alice/deploy/key.pem", PKCS8_KEY),
        put("/home/alice/deploy/cert.pem", CERT),
    ];
    let expect = [
        ("private-key", "/home/alice/.ssh/id_rsa"),
        ("private-key", "/home/alice/deploy/key.pem"),
    ];
    linux_case("privkeys", &ops, &expect);
    // A home that is a symlink (as /home itself is on Fedora CoreOS) is walked through it.
    let ops = [
        put("/srv/bob/.ssh/id_ed25519", OPENSSH_KEY),
        Op::Ln("/home/bob", "/srv/bob"),
    ];
    let expect = [("private-key", "/home/bob/.ssh/id_ed25519")];
    linux_case("privkeys-linked-home", &ops, &expect);
}

#[test]
fn linux_shell_history_only_when_not_empty() {
    let p = "/root/.bash_history";
    let ops = [put(p, "sudo apt update\nmysql -u root -phunter2\n")];
    linux_case("history", &ops, &[("shell-history", p)]);
    linux_case("history-empty", &[put(p, "")], &[]);
}

#[test]
fn linux_cloud_credentials_each() {
    for (i, (path, data, id)) in PLANTS.iter().enumerate() {
        if *id == CREDS {
            linux_case(&format!("creds-{i}"), &[put(path, data)], &[(CREDS, path)]);
        }
    }
}

#[test]
fn linux_sshd_root_password_login_through_include() {
    let hit = [("sshd-root-password", SSHD)];
    let yes = [
        put(SSHD, SSHD_MAIN),
        put(DROPIN, "PasswordAuthentication yes\n"),
    ];
    linux_case("sshd-yes", &yes, &hit);
    let no = [
        put(SSHD, SSHD_MAIN),
        put(DROPIN, "PasswordAuthentication no\n"),
    ];
    linux_case("sshd-no", &no, &[]);
    // A Match block in a drop-in ends only that file's global section: sshd goes on with
    // the including file, so the main file's PermitRootLogin yes still applies.
    let sftp = "Match Group sftp\n  ChrootDirectory %h\n  PermitRootLogin no\n";
    let matched = [
        put(SSHD, SSHD_MAIN),
        put("/etc/ssh/sshd_config.d/10-sftp.conf", sftp),
        put(DROPIN, "PasswordAuthentication yes\n"),
    ];
    linux_case("sshd-match-in-dropin", &matched, &hit);
    // Root password login only inside a Match block is not the global setting.
    let conditional =
        "PasswordAuthentication yes\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n";
    linux_case("sshd-conditional", &[put(SSHD, conditional)], &[]);
}

#[test]
fn linux_fixed_machine_id() {
    let ops = [put("/etc/machine-id", "4f1c2b3a9d8e7f6a5b4c3d2e1f0a9b8c\n")];
    linux_case("machineid", &ops, &[("machine-id", "/etc/machine-id")]);
    linux_case("machineid-empty", &[put("/etc/machine-id", "")], &[]);
}

/// The fixture marks cloud-init by /etc/cloud/cloud.cfg and a dpkg status entry (what
/// inspection looks for); a purge removes both.
#[test]
fn linux_without_cloud_init_is_info() {
    let ops = [
        Op::Rm("/etc/cloud/cloud.cfg"),
        put("/var/lib/dpkg/status", DPKG_NO_CLOUD_INIT),
    ];
    let expect = [("no-first-boot-agent", "/etc/cloud/cloud.cfg")];
    let s = linux_case("nocloudinit", &ops, &expect);
    assert_eq!(s.worst(), Some(Severity::Info));
}

/// Everything at once, in raw and in qcow2.
#[test]
fn linux_everything_at_once_raw_and_qcow2() {
    let (ops, expect) = linux_everything();
    let raw = copy(linux_base(), "linux-all");
    plant_linux(&raw, &ops);
    let s = scan_file(&raw);
    assert_findings(&s, "linux", &expect);
    assert_eq!(s.worst(), Some(Severity::Block));
    let sq = scan_file(&qcow2(&raw));
    assert_findings(&sq, "linux", &expect);
    assert_eq!(sq.findings, s.findings);
    done(&raw);
}

/// Inspects then scans through a `CountingDevice`; prints and returns the scan's bytes.
fn counted_scan(what: &str, raw: &Path) -> (Scan, u64) {
    let img = open(raw);
    let counted = ikon_disk::CountingDevice::new(img.as_ref());
    let t = Instant::now();
    let ins = inspect(&counted, "raw");
    let (inspect_time, inspect_bytes) = (t.elapsed(), counted.bytes());
    let t = Instant::now();
    let s = scan::scan(&counted, &ins, &ScanConfig::default());
    let (scan_time, scan_bytes) = (t.elapsed(), counted.bytes() - inspect_bytes);
    eprintln!(
        "{what}: inspect {inspect_time:?} reading {inspect_bytes} bytes; \
         scan {scan_time:?} reading {scan_bytes} bytes ({} reads in all)",
        counted.reads()
    );
    (s, scan_bytes)
}

/// A 50 GiB (sparse) disk with everything planted: the scan's reads stay small whatever
/// the disk's size (bounded, so asserted; the time is only printed).
#[test]
fn linux_50g_scan_reads_are_bounded() {
    let (ops, expect) = linux_everything();
    let raw = make_linux("linux-50g", &[&"ubuntu2204"], &[("DISK_SIZE", "50G")]);
    plant_linux(&raw, &ops);
    assert_eq!(open(&raw).len(), 50 << 30);
    let (s, bytes) = counted_scan("50 GiB Linux disk, everything planted", &raw);
    assert_findings(&s, "linux", &expect);
    assert!(bytes < 64 << 20, "the scan read {bytes} bytes");
    done(&raw);
}

/// A real Debian 12 (debootstrap, real packages; cached under .cache/debootstrap) is clean:
/// nothing to warn about or block, only the info that it has no first-boot agent.
#[test]
fn debootstrapped_debian12_is_clean() {
    need("debootstrap");
    let tree = repo().join(".cache/debootstrap/bookworm");
    let script = repo().join("scripts/fixtures/make-debootstrap-tree.sh");
    sh(r#"bash "$1" "$2""#, &[&script, &tree]);
    let env = [("ROOT_MIB", "400"), ("DISK_SIZE", "1G")];
    let raw = make_linux("debootstrap", &[&"debian12", &tree], &env);
    let (s, _) = counted_scan("debootstrapped Debian 12", &raw);
    let bad = s.count(Severity::Warn) + s.count(Severity::Block);
    assert_eq!(bad, 0, "{s:#?}");
    assert_findings(
        &s,
        "linux",
        &[("no-first-boot-agent", "/etc/cloud/cloud.cfg")],
    );
    done(&raw);
}

// ---------------------------------------------------------------- Windows

/// A change to C:.
enum WinOp {
    /// Write a file (path relative to C:, `/`-separated; the directory must exist).
    Put(&'static str, Vec<u8>),
    /// Merge .reg lines (keys under `HKEY_LOCAL_MACHINE\SOFTWARE`) into the SOFTWARE hive.
    Software(&'static str),
}

const SOFTWARE: &str = "Windows/System32/config/SOFTWARE";

/// Applies `ops` to C: of `raw`: the partition is copied out with dd (ntfs-3g's tools take
/// a whole device, no offset), changed with ntfscat / hivexregedit / ntfscp, and copied
/// back; every change is then read back through `ikon_guest::ntfsfs`.
fn plant_windows(raw: &Path, ops: &[WinOp]) {
    let dir = raw.parent().unwrap_or(raw);
    let c = dir.join("c.fs");
    let (off, len) = (WIN_C.0.to_string(), WIN_C.1.to_string());
    sh(
        r#"dd if="$1" of="$2" bs=1M iflag=skip_bytes,count_bytes skip=$3 count=$4 conv=sparse status=none"#,
        &[&raw, &c, &off, &len],
    );
    let mut expect: Vec<(&str, Vec<u8>)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let local = dir.join(format!("plant-{i}"));
        match op {
            WinOp::Put(path, data) => {
                std::fs::write(&local, data).unwrap_or_else(|e| panic!("{e}"));
                sh(r#"ntfscp -q "$1" "$2" "$3""#, &[&c, &local, path]);
                expect.push((path, data.clone()));
            }
            WinOp::Software(reg) => {
                let r = dir.join(format!("plant-{i}.reg"));
                let text = format!("Windows Registry Editor Version 5.00\n\n{reg}\n");
                std::fs::write(&r, text).unwrap_or_else(|e| panic!("{e}"));
                sh(
                    r#"ntfscat "$1" "$2" > "$3" &&
                       hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$3" "$4" &&
                       ntfscp -q "$1" "$3" "$2""#,
                    &[&c, &SOFTWARE, &local, &r],
                );
                let merged = std::fs::read(&local).unwrap_or_else(|e| panic!("{e}"));
                expect.retain(|(p, _)| *p != SOFTWARE);
                expect.push((SOFTWARE, merged));
            }
        }
    }
    sh(
        r#"dd if="$1" of="$2" bs=1M oflag=seek_bytes seek=$3 conv=notrunc status=none"#,
        &[&c, &raw, &off],
    );
    let _ = std::fs::remove_file(&c);
    let img = open(raw);
    let fs = ikon_guest::ntfsfs::NtfsFs::open(img.as_ref(), WIN_C.0, WIN_C.1)
        .unwrap_or_else(|e| panic!("ntfs: {e}"));
    for (path, data) in expect {
        let got = fs.read_file(&format!("/{path}"), 64 << 20).ok().flatten();
        assert_eq!(got, Some(data), "{path} was not planted");
    }
}

const WINLOGON: &str = r#"[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon]
"AutoAdminLogon"="1"
"DefaultUserName"="Administrator"
"DefaultPassword"="Passw0rd!"
"#;
const NOT_GENERALISED: &str = r#"[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State]
"ImageState"="IMAGE_STATE_COMPLETE"
"#;
const WINLOGON_PATH: &str =
    r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\DefaultPassword";
const STATE_PATH: &str = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State\ImageState";
const PANTHER: &str = "Windows/Panther/unattend.xml";
const SYSPREP: &str = "Windows/System32/Sysprep/unattend.xml";
const PANTHER_PATH: &str = r"C:\Windows\Panther\unattend.xml";
const SYSPREP_PATH: &str = r"C:\Windows\System32\Sysprep\unattend.xml";

/// An answer file whose Shell-Setup component sets the administrator's and the automatic
/// logon's password to `value`.
fn unattend(value: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
      <UserAccounts>
        <AdministratorPassword><Value>{value}</Value><PlainText>false</PlainText></AdministratorPassword>
      </UserAccounts>
      <AutoLogon>
        <Password><Value>{value}</Value><PlainText>false</PlainText></Password>
        <Enabled>true</Enabled>
        <Username>Administrator</Username>
      </AutoLogon>
    </component>
  </settings>
</unattend>
"#
    )
}

/// `text` as UTF-16LE with a byte order mark (what Windows System Image Manager saves).
fn utf16le(text: &str) -> Vec<u8> {
    let mut v = vec![0xff, 0xfe];
    for u in text.encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

fn windows_case(name: &str, ops: &[WinOp], expect: &[(&str, &str)]) -> Scan {
    let raw = copy(windows_base(), name);
    plant_windows(&raw, ops);
    let s = scan_file(&raw);
    assert_findings(&s, "windows", expect);
    done(&raw);
    s
}

#[test]
fn windows_clean_generalised_base_has_no_findings() {
    let s = windows_case("win-clean", &[], &[]);
    assert_eq!(s.worst(), None);
}

#[test]
fn windows_autologon_password() {
    let ops = [WinOp::Software(WINLOGON)];
    let s = windows_case(
        "win-autologon",
        &ops,
        &[("autologon-password", WINLOGON_PATH)],
    );
    assert!(s.findings[0].message.contains("AutoAdminLogon on"), "{s:?}");
    assert!(!s.findings[0].message.contains("Passw0rd"), "{s:?}");
}

#[test]
fn windows_unattend_password_in_panther() {
    let ops = [WinOp::Put(PANTHER, unattend("Passw0rd!").into_bytes())];
    let s = windows_case("win-panther", &ops, &[("unattend-password", PANTHER_PATH)]);
    assert!(!s.findings[0].message.contains("Passw0rd"), "{s:?}");
}

#[test]
fn windows_unattend_processed_by_sysprep_is_clean() {
    let xml = unattend("*SENSITIVE*DATA*DELETED*");
    windows_case(
        "win-sysprepped",
        &[WinOp::Put(PANTHER, xml.into_bytes())],
        &[],
    );
}

#[test]
fn windows_unattend_utf16_in_sysprep() {
    let ops = [WinOp::Put(SYSPREP, utf16le(&unattend("Passw0rd!")))];
    windows_case("win-utf16", &ops, &[("unattend-password", SYSPREP_PATH)]);
}

#[test]
fn windows_not_generalised_is_info() {
    let ops = [WinOp::Software(NOT_GENERALISED)];
    let s = windows_case("win-complete", &ops, &[("not-generalised", STATE_PATH)]);
    assert_eq!(s.worst(), Some(Severity::Info));
    // Built without any sysprep state (IMAGE_STATE empty): not generalised either.
    let raw = make_windows("win-nostate", &[("IMAGE_STATE", "")]);
    let s = scan_file(&raw);
    assert_findings(&s, "windows", &[("not-generalised", STATE_PATH)]);
    assert!(
        s.findings[0].message.starts_with("No sysprep state"),
        "{s:?}"
    );
    done(&raw);
}

#[test]
fn windows_everything_at_once_raw_and_qcow2() {
    let ops = [
        WinOp::Software(WINLOGON),
        WinOp::Software(NOT_GENERALISED),
        WinOp::Put(PANTHER, unattend("UABhAHMAcwB3ADAAcgBkACEA").into_bytes()),
        WinOp::Put(SYSPREP, utf16le(&unattend("Passw0rd!"))),
    ];
    let expect = [
        ("autologon-password", WINLOGON_PATH),
        ("not-generalised", STATE_PATH),
        ("unattend-password", PANTHER_PATH),
        ("unattend-password", SYSPREP_PATH),
    ];
    let raw = copy(windows_base(), "win-all");
    plant_windows(&raw, &ops);
    let s = scan_file(&raw);
    assert_findings(&s, "windows", &expect);
    assert_eq!(s.worst(), Some(Severity::Block));
    let sq = scan_file(&qcow2(&raw));
    assert_findings(&sq, "windows", &expect);
    assert_eq!(sq.findings, s.findings);
    done(&raw);
}
