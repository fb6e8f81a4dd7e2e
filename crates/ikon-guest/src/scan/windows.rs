//! Windows checks on the system volume: an automatic logon password in the SOFTWARE hive's
//! Winlogon key, answer files (unattend.xml, sysprep.inf) that still hold passwords, and a
//! machine that was never generalised (sysprep's ImageState).

use super::linux::small_file;
use super::Hit;
use crate::regf::{Hive, Value};
use crate::vfs::GuestFs;

/// Largest hive read (as inspection).
const HIVE_LIMIT: u64 = 200 << 20;
/// Largest answer file read.
const ANSWER_LIMIT: u64 = 4 << 20;
/// The SOFTWARE hive.
const SOFTWARE: &str = "/Windows/System32/config/SOFTWARE";
/// Winlogon's key in the SOFTWARE hive.
const WINLOGON: &str = "Microsoft\\Windows NT\\CurrentVersion\\Winlogon";
/// Sysprep's state key in the SOFTWARE hive (value `ImageState`).
const SETUP_STATE: &str = "Microsoft\\Windows\\CurrentVersion\\Setup\\State";
/// What sysprep writes for a password it has consumed.
const DELETED: &str = "*SENSITIVE*DATA*DELETED*";
/// Directories where Windows setup and sysprep look for (and leave) answer files.
const ANSWER_DIRS: &[&str] = &[
    "/",
    "/Windows/Panther",
    "/Windows/Panther/Unattend",
    "/Windows/System32/Sysprep",
    "/Windows/System32/Sysprep/Panther",
    "/sysprep",
];

/// `C:\…` for a path on the system volume.
fn win_path(p: &str) -> String {
    format!("C:{}", p.replace('/', "\\"))
}

fn string_value(h: &Hive, key: &str, name: &str) -> Option<String> {
    let k = h.open_key(key).ok()??;
    match h.value(k, name).ok()?? {
        Value::Dword(d) => Some(d.to_string()),
        v => v.as_string(),
    }
}

fn hive_checks(h: &Hive, out: &mut Vec<Hit>) {
    if let Some(pw) = string_value(h, WINLOGON, "DefaultPassword") {
        if !pw.is_empty() {
            let auto = string_value(h, WINLOGON, "AutoAdminLogon").unwrap_or_default();
            let user = string_value(h, WINLOGON, "DefaultUserName").unwrap_or_default();
            out.push(Hit {
                id: "autologon-password",
                path: format!("HKLM\\SOFTWARE\\{WINLOGON}\\DefaultPassword"),
                what: format!(
                    "Winlogon stores a clear-text DefaultPassword{} (AutoAdminLogon {})",
                    if user.is_empty() {
                        String::new()
                    } else {
                        format!(" for '{user}'")
                    },
                    if auto.trim() == "1" { "on" } else { "off" }
                ),
            });
        }
    }
    let state = string_value(h, SETUP_STATE, "ImageState").unwrap_or_default();
    if !state.starts_with("IMAGE_STATE_GENERALIZE_RESEAL") {
        out.push(Hit {
            id: "not-generalised",
            path: format!("HKLM\\SOFTWARE\\{SETUP_STATE}\\ImageState"),
            what: if state.is_empty() {
                "no sysprep state: the machine was not generalised".to_string()
            } else {
                format!("sysprep state is {state}: the machine was not generalised")
            },
        });
    }
}

/// Text of an answer file: UTF-16 with a byte order mark, else UTF-8 (lossy).
fn decode(data: &[u8]) -> String {
    let utf16 = |be: bool| {
        let units: Vec<u16> = data[2..]
            .chunks_exact(2)
            .map(|c| {
                if be {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    match data {
        [0xff, 0xfe, ..] => utf16(false),
        [0xfe, 0xff, ..] => utf16(true),
        _ => String::from_utf8_lossy(data).to_string(),
    }
}

/// Names of unattend.xml elements that hold a password (a `<Value>` child or text).
fn password_elements(xml: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let local = name.rsplit(':').next().unwrap_or(name);
        if !local.ends_with("Password") || name.starts_with('/') {
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        if rest[..gt].ends_with('/') {
            continue;
        }
        let close = format!("</{name}>");
        let Some(end) = rest.find(&close) else {
            continue;
        };
        let inner = &rest[gt + 1..end];
        let value = match (inner.find("<Value>"), inner.find("</Value>")) {
            (Some(a), Some(b)) if b > a => &inner[a + 7..b],
            _ if inner.contains('<') => "",
            _ => inner,
        };
        let value = value.trim();
        if !value.is_empty() && value != DELETED {
            found.push(local.to_string());
        }
    }
    found
}

/// `AdminPassword=` / `Password=` lines of a sysprep.inf with a real value.
fn inf_passwords(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            let v = v.trim().trim_matches('"');
            (k.to_ascii_lowercase().ends_with("password") && !v.is_empty() && v != "*")
                .then(|| k.to_string())
        })
        .collect()
}

fn answer_files<F: GuestFs>(fs: &F, out: &mut Vec<Hit>) {
    for dir in ANSWER_DIRS {
        for name in fs.list_dir(dir, 4096).unwrap_or_default() {
            let lower = name.to_ascii_lowercase();
            let xml = lower.ends_with(".xml") && lower.contains("unattend");
            let inf = lower == "sysprep.inf";
            if !xml && !inf {
                continue;
            }
            let path = format!("{}/{name}", dir.trim_end_matches('/'));
            let Some(data) = small_file(fs, &path, ANSWER_LIMIT) else {
                continue;
            };
            let text = decode(&data);
            let keys = if inf {
                inf_passwords(&text)
            } else {
                password_elements(&text)
            };
            if !keys.is_empty() {
                let mut keys = keys;
                keys.sort();
                keys.dedup();
                out.push(Hit {
                    id: "unattend-password",
                    path: win_path(&path),
                    what: format!(
                        "the answer file {} still holds {} (not shown)",
                        win_path(&path),
                        keys.join(", ")
                    ),
                });
            }
        }
    }
}

/// Runs every Windows check on a system volume.
pub fn scan<F: GuestFs>(fs: &F, out: &mut Vec<Hit>, problems: &mut Vec<String>) {
    match fs.read_file(SOFTWARE, HIVE_LIMIT).map(|d| d.map(Hive::new)) {
        Ok(Some(Ok(h))) => hive_checks(&h, out),
        Ok(Some(Err(e))) => problems.push(format!("SOFTWARE hive: {e}")),
        Ok(None) => problems.push("SOFTWARE hive is missing".into()),
        Err(e) => problems.push(format!("SOFTWARE hive: {e}")),
    }
    answer_files(fs, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unattend_passwords() {
        let xml = r#"<unattend><settings><component>
            <UserAccounts><AdministratorPassword><Value>UABhAHMAcwA=</Value><PlainText>false</PlainText></AdministratorPassword>
            <LocalAccounts><LocalAccount><Password><Value>*SENSITIVE*DATA*DELETED*</Value></Password></LocalAccount></LocalAccounts></UserAccounts>
            <AutoLogon><Password><Value></Value></Password><Enabled>true</Enabled></AutoLogon>
            </component></settings></unattend>"#;
        assert_eq!(password_elements(xml), ["AdministratorPassword"]);
        let clean =
            "<AutoLogon><Password><Value>*SENSITIVE*DATA*DELETED*</Value></Password></AutoLogon>";
        assert!(password_elements(clean).is_empty());
        assert_eq!(
            password_elements("<wcm:Password>secret</wcm:Password>"),
            ["Password"]
        );
    }

    #[test]
    fn sysprep_inf_and_utf16() {
        assert_eq!(
            inf_passwords("[GuiUnattended]\nAdminPassword=\"x1\"\nOEMSkipRegional=1\n"),
            ["AdminPassword"]
        );
        assert!(inf_passwords("AdminPassword=*\n").is_empty());
        let mut d = vec![0xff, 0xfe];
        for u in "<Password>p</Password>".encode_utf16() {
            d.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(password_elements(&decode(&d)), ["Password"]);
    }
}
