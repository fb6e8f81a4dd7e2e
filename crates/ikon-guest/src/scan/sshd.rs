//! The SSH daemon's effective global settings for root password login, read as sshd reads
//! `/etc/ssh/sshd_config` (sshd_config(5)): keywords are case-insensitive, the first value
//! obtained wins, `Include` is followed in place (relative paths are under /etc/ssh, globs
//! in the last component expand in lexical order), and the global section of a file ends at
//! its first `Match` (a `Match` in an included file ends only that file's global section:
//! sshd restores the including file's match state after an `Include`). Unset,
//! `PasswordAuthentication` is yes and `PermitRootLogin` is prohibit-password (OpenSSH 7.0
//! and later).

use super::linux::small_file;
use super::Hit;
use crate::vfs::GuestFs;
use ikon_disk::{Error, Result};

/// The main configuration file.
const MAIN: &str = "/etc/ssh/sshd_config";
/// Include nesting sshd allows (READCONF_MAX_DEPTH in OpenSSH's readconf.h).
const MAX_DEPTH: usize = 16;
/// Largest configuration file read.
const FILE_LIMIT: u64 = 1 << 20;
/// Files read at most through includes.
const MAX_FILES: usize = 256;

/// A setting and the file that set it.
#[derive(Debug, Clone, Default)]
pub struct Setting {
    /// Value (lowercase).
    pub value: String,
    /// File it came from.
    pub file: String,
}

/// The settings that decide root password login.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    /// PermitRootLogin, if set.
    pub permit_root_login: Option<Setting>,
    /// PasswordAuthentication, if set.
    pub password_authentication: Option<Setting>,
    /// Whether any configuration file was found.
    pub found: bool,
}

impl Effective {
    /// A finding when root may log in with a password.
    pub fn root_password_hit(&self) -> Option<Hit> {
        let root = self.permit_root_login.as_ref()?;
        if root.value != "yes" {
            return None;
        }
        let pw = self
            .password_authentication
            .as_ref()
            .map_or("yes", |s| s.value.as_str());
        if pw != "yes" {
            return None;
        }
        let how = match &self.password_authentication {
            Some(s) => format!("PasswordAuthentication yes in {}", s.file),
            None => "PasswordAuthentication unset (yes by default)".to_string(),
        };
        Some(Hit {
            id: "sshd-root-password",
            path: root.file.clone(),
            what: format!("PermitRootLogin yes in {} with {how}", root.file),
        })
    }
}

struct Reader<'a, F: GuestFs> {
    fs: &'a F,
    files: usize,
    out: Effective,
}

/// Reads the effective settings.
pub fn effective<F: GuestFs>(fs: &F) -> Result<Effective> {
    let mut r = Reader {
        fs,
        files: 0,
        out: Effective::default(),
    };
    r.file(MAIN, 0)?;
    Ok(r.out)
}

/// Splits a line into its keyword and arguments (`Key value`, `Key=value`, quoted args).
fn split(line: &str) -> Option<(String, Vec<String>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let key = line[..end].to_ascii_lowercase();
    let rest = line[end..].trim_start().trim_start_matches('=').trim();
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in rest.chars() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted && cur.is_empty() => break,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    args.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        args.push(cur);
    }
    Some((key, args))
}

/// Whether `name` matches a glob of `*` and `?` (dynamic programming: linear in the
/// product of the lengths, whatever the pattern).
fn glob(pat: &[u8], name: &[u8]) -> bool {
    // row[j]: the pattern so far matches name[..j].
    let mut row = vec![false; name.len() + 1];
    row[0] = true;
    for &p in pat {
        let mut next = vec![false; name.len() + 1];
        if p == b'*' {
            let mut any = false;
            for j in 0..=name.len() {
                any |= row[j];
                next[j] = any;
            }
        } else {
            for j in 1..=name.len() {
                next[j] = row[j - 1] && (p == b'?' || p == name[j - 1]);
            }
        }
        row = next;
    }
    row[name.len()]
}

impl<F: GuestFs> Reader<'_, F> {
    fn file(&mut self, path: &str, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::limit(format!(
                "sshd Include nesting deeper than {MAX_DEPTH} at {path}"
            )));
        }
        self.files += 1;
        if self.files > MAX_FILES {
            return Err(Error::limit(format!(
                "more than {MAX_FILES} sshd configuration files"
            )));
        }
        let Some(text) = small_file(self.fs, path, FILE_LIMIT) else {
            return Ok(());
        };
        self.out.found = true;
        for line in String::from_utf8_lossy(&text).lines() {
            let Some((key, args)) = split(line) else {
                continue;
            };
            let first = args.first().map(|a| a.to_ascii_lowercase());
            match key.as_str() {
                // The rest of this file is conditional; the including file goes on.
                "match" => return Ok(()),
                "include" => {
                    for a in &args {
                        for f in self.expand(a) {
                            self.file(&f, depth + 1)?;
                        }
                    }
                }
                "permitrootlogin" => set(&mut self.out.permit_root_login, first, path),
                "passwordauthentication" => set(&mut self.out.password_authentication, first, path),
                _ => {}
            }
        }
        Ok(())
    }

    /// The files an Include argument names, in lexical order.
    fn expand(&self, arg: &str) -> Vec<String> {
        let full = if arg.starts_with('/') {
            arg.to_string()
        } else {
            format!("/etc/ssh/{arg}")
        };
        let (dir, last) = full.rsplit_once('/').unwrap_or(("", &full));
        if !last.contains(['*', '?']) {
            return vec![full];
        }
        let dir = if dir.is_empty() { "/" } else { dir };
        let mut names: Vec<String> = self
            .fs
            .list_dir(dir, 4096)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| !n.starts_with('.') && glob(last.as_bytes(), n.as_bytes()))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| format!("{}/{n}", dir.trim_end_matches('/')))
            .collect()
    }
}

fn set(slot: &mut Option<Setting>, value: Option<String>, file: &str) {
    if slot.is_none() {
        if let Some(v) = value {
            *slot = Some(Setting {
                value: v,
                file: file.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_globs() {
        assert_eq!(
            split("  PermitRootLogin=yes # why"),
            Some(("permitrootlogin".into(), vec!["yes".into()]))
        );
        assert_eq!(
            split("Include \"/etc/ssh/a b.conf\" x.conf"),
            Some((
                "include".into(),
                vec!["/etc/ssh/a b.conf".into(), "x.conf".into()]
            ))
        );
        assert_eq!(split("# PermitRootLogin yes"), None);
        assert!(glob(b"*.conf", b"50-cloud-init.conf"));
        assert!(!glob(b"*.conf", b"50-cloud-init.conf.bak"));
        assert!(glob(b"?0-*", b"50-x"));
    }

    #[test]
    fn root_password_login_needs_both() {
        let s = |v: &str| {
            Some(Setting {
                value: v.into(),
                file: "/etc/ssh/sshd_config".into(),
            })
        };
        let mut e = Effective {
            permit_root_login: s("yes"),
            password_authentication: None,
            found: true,
        };
        assert!(e.root_password_hit().is_some());
        e.password_authentication = s("no");
        assert!(e.root_password_hit().is_none());
        e.password_authentication = s("yes");
        e.permit_root_login = s("prohibit-password");
        assert!(e.root_password_hit().is_none());
    }
}
