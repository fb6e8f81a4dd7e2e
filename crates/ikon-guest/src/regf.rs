//! A small read-only Windows registry hive (regf) reader: base block, hbin cells, key nodes
//! (nk), subkey lists (lf, lh, li, ri), value lists and values (vk), big data (db).
//!
//! Layouts from the public "Windows registry file format specification" (Maxim Suhanov,
//! msuhanov/regf): base block 4096 bytes ("regf", root cell offset at 0x24), cells relative
//! to the first hbin at 0x1000, cell size i32 (negative = allocated). Bounded: ri nesting
//! depth ≤ 4, visited-cell set against cycles, counts checked against the cell size.

use ikon_disk::bytes::{le16, le16_table, le32, le64_or_zero};
use ikon_disk::{Error, Result};
use std::collections::HashSet;

/// Offset of the first hive bin (base block size).
const HBIN_START: usize = 0x1000;
/// Offset of the root cell offset in the base block.
const ROOT_CELL_OFFSET: usize = 0x24;
/// nk flag: key name is ASCII (KEY_COMP_NAME).
const NK_COMP_NAME: u16 = 0x20;
/// vk flag: value name is ASCII (VALUE_COMP_NAME).
const VK_COMP_NAME: u16 = 0x1;
/// Largest hive accepted (bounds memory).
pub const MAX_HIVE: usize = 200 << 20;
/// Maximum nesting of ri (index root) lists.
const MAX_RI_DEPTH: u32 = 4;
/// Data size above which a value is stored in a db (big data) record.
const BIG_DATA_MIN: usize = 16344;

/// Registry value data types (winnt.h REG_*).
const REG_SZ: u32 = 1;
const REG_EXPAND_SZ: u32 = 2;
const REG_DWORD: u32 = 4;
const REG_MULTI_SZ: u32 = 7;
const REG_QWORD: u32 = 11;

/// A decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// REG_SZ / REG_EXPAND_SZ.
    String(String),
    /// REG_MULTI_SZ.
    MultiString(Vec<String>),
    /// REG_DWORD.
    Dword(u32),
    /// REG_QWORD.
    Qword(u64),
    /// Anything else.
    Binary(u32, Vec<u8>),
}

impl Value {
    /// The value as a string, if it is one (or a number, formatted).
    pub fn as_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Dword(d) => Some(d.to_string()),
            Value::Qword(d) => Some(d.to_string()),
            _ => None,
        }
    }
}

/// A key handle (cell offset of its nk record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(usize);

/// A hive held in memory.
pub struct Hive {
    data: Vec<u8>,
}

fn utf16(b: &[u8]) -> String {
    let u: Vec<u16> = le16_table(b);
    String::from_utf16_lossy(&u)
}

fn corrupt(what: &str, off: usize) -> Error {
    Error::corrupt(format!("registry {what} at cell 0x{off:x} is invalid"))
}

impl Hive {
    /// Parse a hive.
    pub fn new(data: Vec<u8>) -> Result<Self> {
        if data.len() > MAX_HIVE {
            return Err(Error::limit(format!(
                "registry hive of {} bytes exceeds {MAX_HIVE}",
                data.len()
            )));
        }
        if data.len() < HBIN_START + 32 || data.get(0..4) != Some(b"regf") {
            return Err(Error::corrupt("registry hive: no regf base block"));
        }
        Ok(Hive { data })
    }

    /// Payload of the cell at hive offset `off` (relative to the first hbin).
    fn cell(&self, off: u32) -> Result<&[u8]> {
        let o = usize::try_from(off).map_err(|_| corrupt("cell", 0))?;
        let abs = HBIN_START
            .checked_add(o)
            .ok_or_else(|| corrupt("cell", o))?;
        let raw = le32(&self.data, abs).ok_or_else(|| corrupt("cell offset", o))?;
        #[allow(clippy::cast_possible_wrap)]
        let size = (raw as i32).unsigned_abs();
        let size = usize::try_from(size).map_err(|_| corrupt("cell size", o))?;
        if size < 8 {
            return Err(corrupt("cell size", o));
        }
        self.data
            .get(abs + 4..abs.saturating_add(size))
            .ok_or_else(|| corrupt("cell (past end of hive)", o))
    }

    /// The root key.
    pub fn root(&self) -> Result<Key> {
        let off = le32(&self.data, ROOT_CELL_OFFSET).ok_or_else(|| corrupt("base block", 0))?;
        let k = Key(usize::try_from(off).map_err(|_| corrupt("root", 0))?);
        self.nk(k)?;
        Ok(k)
    }

    fn nk(&self, k: Key) -> Result<&[u8]> {
        let c = self.cell(u32::try_from(k.0).map_err(|_| corrupt("nk", k.0))?)?;
        if c.get(0..2) != Some(b"nk") || c.len() < 76 {
            return Err(corrupt("key node (nk)", k.0));
        }
        Ok(c)
    }

    /// Name of a key.
    pub fn name(&self, k: Key) -> Result<String> {
        let c = self.nk(k)?;
        let flags = le16(c, 2).unwrap_or(0);
        let len = usize::from(le16(c, 72).unwrap_or(0));
        let n = c
            .get(76..76 + len)
            .ok_or_else(|| corrupt("key name", k.0))?;
        Ok(if flags & NK_COMP_NAME != 0 {
            String::from_utf8_lossy(n).to_string()
        } else {
            utf16(n)
        })
    }

    /// Subkeys of a key (names and handles).
    pub fn subkeys(&self, k: Key) -> Result<Vec<(String, Key)>> {
        let c = self.nk(k)?;
        let count = le32(c, 20).unwrap_or(0);
        if count == 0 {
            return Ok(vec![]);
        }
        let list = le32(c, 28).unwrap_or(u32::MAX);
        let mut offs = Vec::new();
        let mut seen = HashSet::new();
        self.list(list, 0, &mut offs, &mut seen)?;
        let mut out = Vec::with_capacity(offs.len());
        for o in offs {
            let key = Key(usize::try_from(o).map_err(|_| corrupt("subkey", k.0))?);
            out.push((self.name(key)?, key));
        }
        Ok(out)
    }

    fn list(
        &self,
        off: u32,
        depth: u32,
        out: &mut Vec<u32>,
        seen: &mut HashSet<u32>,
    ) -> Result<()> {
        if depth > MAX_RI_DEPTH || !seen.insert(off) {
            return Err(Error::corrupt(format!(
                "registry subkey list at 0x{off:x} loops or nests too deep"
            )));
        }
        let c = self.cell(off)?;
        let o = usize::try_from(off).unwrap_or(0);
        let n = usize::from(le16(c, 2).unwrap_or(0));
        match c.get(0..2) {
            Some(b"lf" | b"lh") => {
                for i in 0..n {
                    out.push(le32(c, 4 + i * 8).ok_or_else(|| corrupt("lf/lh list", o))?);
                }
            }
            Some(b"li") => {
                for i in 0..n {
                    out.push(le32(c, 4 + i * 4).ok_or_else(|| corrupt("li list", o))?);
                }
            }
            Some(b"ri") => {
                for i in 0..n {
                    let sub = le32(c, 4 + i * 4).ok_or_else(|| corrupt("ri list", o))?;
                    self.list(sub, depth + 1, out, seen)?;
                }
            }
            _ => return Err(corrupt("subkey list", o)),
        }
        Ok(())
    }

    /// Child key by name (case-insensitive).
    pub fn child(&self, k: Key, name: &str) -> Result<Option<Key>> {
        Ok(self
            .subkeys(k)?
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, k)| k))
    }

    /// Key at a backslash-separated path below the root.
    pub fn open_key(&self, path: &str) -> Result<Option<Key>> {
        let mut k = self.root()?;
        for comp in path.split('\\').filter(|c| !c.is_empty()) {
            match self.child(k, comp)? {
                Some(c) => k = c,
                None => return Ok(None),
            }
        }
        Ok(Some(k))
    }

    /// Value names of a key.
    pub fn value_names(&self, k: Key) -> Result<Vec<String>> {
        Ok(self.values(k)?.into_iter().map(|(n, _)| n).collect())
    }

    fn values(&self, k: Key) -> Result<Vec<(String, u32)>> {
        let c = self.nk(k)?;
        let count = usize::try_from(le32(c, 36).unwrap_or(0)).unwrap_or(0);
        if count == 0 {
            return Ok(vec![]);
        }
        let list = self.cell(le32(c, 40).unwrap_or(u32::MAX))?;
        if count > list.len() / 4 {
            return Err(corrupt("value list (count exceeds cell)", k.0));
        }
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let vo = le32(list, i * 4).ok_or_else(|| corrupt("value list", k.0))?;
            let v = self.cell(vo)?;
            if v.get(0..2) != Some(b"vk") {
                return Err(corrupt("value (vk)", usize::try_from(vo).unwrap_or(0)));
            }
            let nl = usize::from(le16(v, 2).unwrap_or(0));
            let flags = le16(v, 16).unwrap_or(0);
            let n = v.get(20..20 + nl).unwrap_or(&[]);
            let name = if flags & VK_COMP_NAME != 0 {
                String::from_utf8_lossy(n).to_string()
            } else {
                utf16(n)
            };
            out.push((name, vo));
        }
        Ok(out)
    }

    /// Value by name (case-insensitive; "" = default value).
    pub fn value(&self, k: Key, name: &str) -> Result<Option<Value>> {
        let Some((_, vo)) = self
            .values(k)?
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        else {
            return Ok(None);
        };
        let v = self.cell(vo)?;
        let o = usize::try_from(vo).unwrap_or(0);
        let raw_size = le32(v, 4).unwrap_or(0);
        let ty = le32(v, 12).unwrap_or(0);
        let data: Vec<u8> = if raw_size & 0x8000_0000 != 0 {
            let n = usize::try_from(raw_size & 0x7FFF_FFFF).unwrap_or(0).min(4);
            v.get(8..8 + n).unwrap_or(&[]).to_vec()
        } else {
            let n = usize::try_from(raw_size).unwrap_or(0);
            let d = self.cell(le32(v, 8).unwrap_or(u32::MAX))?;
            if n > BIG_DATA_MIN && d.get(0..2) == Some(b"db") {
                self.big_data(d, n, o)?
            } else {
                d.get(..n)
                    .ok_or_else(|| corrupt("value data (size exceeds cell)", o))?
                    .to_vec()
            }
        };
        Ok(Some(decode(ty, data)))
    }

    fn big_data(&self, db: &[u8], n: usize, o: usize) -> Result<Vec<u8>> {
        let segs = usize::from(le16(db, 2).unwrap_or(0));
        let list = self.cell(le32(db, 4).unwrap_or(u32::MAX))?;
        let mut out = Vec::with_capacity(n.min(MAX_HIVE));
        for i in 0..segs {
            let s = self.cell(le32(list, i * 4).ok_or_else(|| corrupt("db segment list", o))?)?;
            let take = (n - out.len()).min(s.len()).min(BIG_DATA_MIN);
            out.extend_from_slice(&s[..take]);
            if out.len() >= n {
                break;
            }
        }
        Ok(out)
    }
}

fn decode(ty: u32, data: Vec<u8>) -> Value {
    let strip = |s: String| s.trim_end_matches('\0').to_string();
    match ty {
        REG_SZ | REG_EXPAND_SZ => Value::String(strip(utf16(&data))),
        REG_MULTI_SZ => Value::MultiString(
            utf16(&data)
                .split('\0')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        ),
        REG_DWORD if data.len() >= 4 => Value::Dword(le32(&data, 0).unwrap_or(0)),
        REG_QWORD if data.len() >= 8 => Value::Qword(le64_or_zero(&data, 0)),
        _ => Value::Binary(ty, data),
    }
}
