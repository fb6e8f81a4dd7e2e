//! Linux checks: login secrets in /etc/shadow and /etc/passwd, per-home leftovers
//! (authorized_keys, private keys, shell histories, cloud credentials), SSH host keys, the
//! SSH daemon's root password login, a fixed machine id, and a first-boot agent.
//!
//! Every walk is bounded (entries per directory, depth, homes, bytes per file), so a hostile
//! tree costs a bounded number of reads.

use super::{sshd, Hit};
use crate::vfs::{FileKind, GuestFs};
use std::collections::BTreeSet;

/// Largest account database read (/etc/passwd, /etc/shadow).
const ACCOUNTS_LIMIT: u64 = 8 << 20;
/// Largest file whose content is read to look for a private key header.
const KEY_FILE_LIMIT: u64 = 64 << 10;
/// Homes scanned at most (passwd entries plus /home entries).
const MAX_HOMES: usize = 1_000;
/// Entries listed per directory at most.
const LIST_MAX: usize = 4_096;
/// Files examined per home at most by the private key walk.
const WALK_FILES: usize = 2_000;
/// Directory depth of the private key walk below a home.
const WALK_DEPTH: usize = 3;
/// Entries examined by the private key walk over all homes together.
const WALK_TOTAL: usize = 20_000;
/// Bytes of file content the private key walk reads over all homes together.
const WALK_BYTES: u64 = 16 << 20;
/// Homes of system accounts that are system directories (`/usr/sbin`, `/bin`, …): their
/// named dotfiles are checked, but they are not walked for key files.
const SYSTEM_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/usr",
    "/etc",
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/var/run",
    "/var/empty",
    "/var/spool",
    "/var/cache",
    "/var/mail",
    "/var/backups",
];

/// What the private key walk may still spend.
struct WalkBudget {
    entries: usize,
    bytes: u64,
}

fn system_dir(home: &str) -> bool {
    SYSTEM_DIRS
        .iter()
        .any(|d| home == *d || home.strip_prefix(d).is_some_and(|r| r.starts_with('/')))
}

/// Shell and REPL history files (non-empty = a finding).
const HISTORIES: &[&str] = &[
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".ash_history",
    ".history",
    ".histfile",
    ".python_history",
    ".mysql_history",
    ".psql_history",
    ".sqlite_history",
    ".node_repl_history",
    ".rediscli_history",
    ".local/share/fish/fish_history",
];

/// Cloud and cluster credential files below a home (non-empty = a finding).
const CREDENTIAL_FILES: &[&str] = &[
    ".aws/credentials",
    ".aliyun/config.json",
    ".kube/config",
    ".config/gcloud/credentials.db",
    ".config/gcloud/access_tokens.db",
    ".config/gcloud/application_default_credentials.json",
    ".s3cfg",
    ".boto",
    ".azure/accessTokens.json",
    ".azure/msal_token_cache.json",
];

/// Credential directories below a home: any non-empty regular file in them is a finding
/// (tccli keeps one `*.credential` file per profile; gcloud keeps legacy credentials per
/// account).
const CREDENTIAL_DIRS: &[&str] = &[".tccli", ".config/gcloud/legacy_credentials"];

/// Files whose presence shows a first-boot agent (cloud-init is also detected by the
/// inspection).
const FIRST_BOOT_AGENTS: &[&str] = &[
    "/usr/bin/cloud-init",
    "/etc/cloud/cloud.cfg",
    "/usr/bin/coreos-cloudinit",
    "/usr/lib/dracut/modules.d/30ignition",
    "/usr/bin/afterburn",
    "/usr/local/qcloud/tat_agent",
    "/usr/sbin/aliyun-service",
];

/// A file's size when `path` is a regular file (following symlinks).
pub(super) fn file_size<F: GuestFs>(fs: &F, path: &str) -> Option<u64> {
    let n = fs.resolve(path, true).ok()??;
    (fs.kind(&n).ok()? == FileKind::File)
        .then(|| fs.size(&n).ok())
        .flatten()
}

/// A file's bytes when it is a regular file of at most `limit` bytes.
pub(super) fn small_file<F: GuestFs>(fs: &F, path: &str, limit: u64) -> Option<Vec<u8>> {
    match file_size(fs, path) {
        Some(n) if n <= limit => fs.read_file(path, limit).ok().flatten(),
        _ => None,
    }
}

/// One account of /etc/passwd.
#[derive(Debug, Clone)]
struct Account {
    name: String,
    password: String,
    home: String,
}

fn passwd<F: GuestFs>(fs: &F) -> Vec<Account> {
    let Some(text) = small_file(fs, "/etc/passwd", ACCOUNTS_LIMIT) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7 && !f[0].is_empty()).then(|| Account {
                name: f[0].to_string(),
                password: f[1].to_string(),
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// Whether a password field holds a hash a login can match (not locked, not a placeholder).
fn usable_hash(field: &str) -> bool {
    if field.is_empty() || field.starts_with('!') || field.starts_with('*') {
        return false;
    }
    // Modular crypt ($id$...) or traditional DES (13 characters of the crypt alphabet).
    field.starts_with('$')
        || (field.len() == 13
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/'))
}

fn passwords<F: GuestFs>(fs: &F, accounts: &[Account], out: &mut Vec<Hit>) {
    if let Some(text) = small_file(fs, "/etc/shadow", ACCOUNTS_LIMIT) {
        for l in String::from_utf8_lossy(&text).lines() {
            let mut f = l.split(':');
            let (Some(name), Some(pw)) = (f.next(), f.next()) else {
                continue;
            };
            if name.is_empty() || name.starts_with('#') {
                continue;
            }
            password_hit(name, pw, "/etc/shadow", out);
        }
    }
    // "x" defers to /etc/shadow; anything else in /etc/passwd is the password itself.
    for a in accounts.iter().filter(|a| a.password != "x") {
        password_hit(&a.name, &a.password, "/etc/passwd", out);
    }
}

fn password_hit(name: &str, field: &str, path: &str, out: &mut Vec<Hit>) {
    if field.is_empty() {
        out.push(Hit {
            id: "empty-password",
            path: path.into(),
            what: format!("account '{name}' has an empty password field in {path}"),
        });
    } else if usable_hash(field) {
        out.push(Hit {
            id: "password-hash",
            path: path.into(),
            what: format!("account '{name}' has a usable password hash in {path} (not shown)"),
        });
    }
}

/// Homes to look in: every account's home, /root, and every directory in /home.
fn homes<F: GuestFs>(fs: &F, accounts: &[Account]) -> Vec<String> {
    let mut set = BTreeSet::new();
    set.insert("/root".to_string());
    for a in accounts {
        let h = a.home.trim_end_matches('/');
        if h.starts_with('/') && !matches!(h, "" | "/nonexistent" | "/dev/null") {
            set.insert(h.to_string());
        }
    }
    if let Ok(names) = fs.list_dir("/home", LIST_MAX) {
        for n in names.into_iter().filter(|n| n != "." && n != "..") {
            set.insert(format!("/home/{n}"));
        }
    }
    // Keep the ones that are directories, bounded (system directories are not walked for
    // key files: see `private_keys`).
    set.into_iter()
        .filter(|h| h != "/" && !h.is_empty())
        .filter(|h| {
            matches!(fs.resolve(h, true), Ok(Some(n)) if fs.kind(&n).ok() == Some(FileKind::Dir))
        })
        .take(MAX_HOMES)
        .collect()
}

fn has_key_line(text: &[u8]) -> bool {
    String::from_utf8_lossy(text)
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The names at the top of a home, read once: the named checks below look up only paths
/// whose first component is there (a crowded home is not read once per check).
fn top_names<F: GuestFs>(fs: &F, home: &str) -> BTreeSet<String> {
    match fs.resolve(home, true) {
        Ok(Some(n)) => fs
            .children(&n, LIST_MAX)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, _)| name)
            .collect(),
        _ => BTreeSet::new(),
    }
}

fn home_files<F: GuestFs>(fs: &F, home: &str, out: &mut Vec<Hit>) {
    let top = top_names(fs, home);
    let here = |rel: &str| top.contains(rel.split('/').next().unwrap_or(rel));
    if here(".ssh") {
        authorized_keys(fs, home, out);
    }
    for h in HISTORIES.iter().filter(|h| here(h)) {
        let p = format!("{home}/{h}");
        if file_size(fs, &p).is_some_and(|n| n > 0) {
            out.push(Hit {
                id: "shell-history",
                path: p.clone(),
                what: format!("{p} is not empty"),
            });
        }
    }
    for c in CREDENTIAL_FILES.iter().filter(|c| here(c)) {
        let p = format!("{home}/{c}");
        if file_size(fs, &p).is_some_and(|n| n > 0) {
            out.push(Hit {
                id: "cloud-credentials",
                path: p.clone(),
                what: format!("{p} holds cloud or cluster credentials"),
            });
        }
    }
    for d in CREDENTIAL_DIRS.iter().filter(|d| here(d)) {
        let dir = format!("{home}/{d}");
        for n in fs.list_dir(&dir, LIST_MAX).unwrap_or_default() {
            let p = format!("{dir}/{n}");
            if n != "." && n != ".." && file_size(fs, &p).is_some_and(|s| s > 0) {
                out.push(Hit {
                    id: "cloud-credentials",
                    path: p.clone(),
                    what: format!("{p} holds cloud credentials"),
                });
            }
        }
    }
}

fn authorized_keys<F: GuestFs>(fs: &F, home: &str, out: &mut Vec<Hit>) {
    for f in ["authorized_keys", "authorized_keys2"] {
        let p = format!("{home}/.ssh/{f}");
        if let Some(t) = small_file(fs, &p, 1 << 20) {
            if has_key_line(&t) {
                out.push(Hit {
                    id: "authorized-keys",
                    path: p.clone(),
                    what: format!("{p} lets the holder of its key log in"),
                });
            }
        } else if file_size(fs, &p).is_some_and(|n| n > 0) {
            out.push(Hit {
                id: "authorized-keys",
                path: p.clone(),
                what: format!("{p} is present (too large to read)"),
            });
        }
    }
}

/// Whether `data` is a private key: a PEM private key header (OpenSSH, PKCS#1, PKCS#8, EC,
/// DSA, encrypted) or a PuTTY key file.
pub fn is_private_key(data: &[u8]) -> bool {
    let head = &data[..data.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    text.lines().any(|l| {
        let l = l.trim();
        (l.starts_with("-----BEGIN ") && l.ends_with("PRIVATE KEY-----"))
            || l.starts_with("PuTTY-User-Key-File-")
    })
}

/// Walks a home (bounded) for files holding private keys. The home itself may be a symlink
/// (it is followed, as a login would); below it, symlinks are never followed, so a link
/// back up the tree cannot make the walk loop. Directories are walked by node, not by path,
/// so no lookup restarts from the root.
fn private_keys<F: GuestFs>(fs: &F, home: &str, total: &mut WalkBudget, out: &mut Vec<Hit>) {
    if system_dir(home) {
        return;
    }
    let Ok(Some(start)) = fs.resolve(home, true) else {
        return;
    };
    let mut budget = WALK_FILES;
    let mut stack = vec![(start, home.to_string(), 0usize)];
    while let Some((dn, dir, depth)) = stack.pop() {
        if budget == 0 {
            break;
        }
        if fs.kind(&dn).ok() != Some(FileKind::Dir) {
            continue;
        }
        let Ok(entries) = fs.children(&dn, LIST_MAX) else {
            continue;
        };
        for (name, n) in entries {
            if budget == 0 || total.entries == 0 {
                break;
            }
            budget -= 1;
            total.entries -= 1;
            let path = format!("{dir}/{name}");
            match fs.kind(&n) {
                Ok(FileKind::Dir) if depth < WALK_DEPTH => stack.push((n, path, depth + 1)),
                Ok(FileKind::File) => {
                    let size = fs.size(&n).unwrap_or(0);
                    if size == 0 || size > KEY_FILE_LIMIT || size > total.bytes {
                        continue;
                    }
                    total.bytes -= size;
                    if let Ok(data) = fs.read_node(&n, KEY_FILE_LIMIT) {
                        if is_private_key(&data) {
                            out.push(Hit {
                                id: "private-key",
                                path: path.clone(),
                                what: format!("{path} holds a private key"),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn host_keys<F: GuestFs>(fs: &F, out: &mut Vec<Hit>) {
    for n in fs.list_dir("/etc/ssh", LIST_MAX).unwrap_or_default() {
        if n.starts_with("ssh_host_") && n.ends_with("_key") {
            let p = format!("/etc/ssh/{n}");
            if file_size(fs, &p).is_some_and(|s| s > 0) {
                out.push(Hit {
                    id: "ssh-host-key",
                    path: p.clone(),
                    what: format!("the SSH host private key {p} is in the image"),
                });
            }
        }
    }
}

fn machine_id<F: GuestFs>(fs: &F, out: &mut Vec<Hit>) {
    let Some(t) = small_file(fs, "/etc/machine-id", 4096) else {
        return;
    };
    let id = String::from_utf8_lossy(&t).trim().to_string();
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        out.push(Hit {
            id: "machine-id",
            path: "/etc/machine-id".into(),
            what: "/etc/machine-id holds a fixed machine id".into(),
        });
    }
}

/// Runs every Linux check on a root filesystem; `cloud_init` is what inspection found.
pub fn scan<F: GuestFs>(fs: &F, cloud_init: bool, out: &mut Vec<Hit>, problems: &mut Vec<String>) {
    let accounts = passwd(fs);
    passwords(fs, &accounts, out);
    let mut walk = WalkBudget {
        entries: WALK_TOTAL,
        bytes: WALK_BYTES,
    };
    for home in homes(fs, &accounts) {
        home_files(fs, &home, out);
        private_keys(fs, &home, &mut walk, out);
    }
    host_keys(fs, out);
    match sshd::effective(fs) {
        Ok(s) => {
            if let Some(hit) = s.root_password_hit() {
                out.push(hit);
            }
        }
        Err(e) => problems.push(format!("sshd configuration: {e}")),
    }
    machine_id(fs, out);
    if !cloud_init && !FIRST_BOOT_AGENTS.iter().any(|p| fs.exists(p)) {
        out.push(Hit {
            id: "no-first-boot-agent",
            path: "/etc/cloud/cloud.cfg".into(),
            what: "no cloud-init or equivalent first-boot agent was found".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_locked_and_placeholders() {
        assert!(usable_hash("$6$salt$abcdef"));
        assert!(usable_hash("$y$j9T$abc$def"));
        assert!(usable_hash("abJnggxhB/yWI"));
        for f in ["", "!", "*", "!!", "!$6$salt$abc", "*LK*", "x", "NP"] {
            assert!(!usable_hash(f), "{f}");
        }
    }

    #[test]
    fn private_key_headers() {
        assert!(is_private_key(
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n"
        ));
        assert!(is_private_key(b"junk\n-----BEGIN RSA PRIVATE KEY-----\n"));
        assert!(is_private_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(is_private_key(b"PuTTY-User-Key-File-3: ssh-ed25519\n"));
        assert!(!is_private_key(b"-----BEGIN PUBLIC KEY-----\n"));
        assert!(!is_private_key(b"-----BEGIN CERTIFICATE-----\n"));
        assert!(!is_private_key(b"ssh-ed25519 AAAA user@host\n"));
    }
}
