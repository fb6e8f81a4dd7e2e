//! On-disk integers and identifiers: the one set of field readers every parser in Ikon (the
//! image formats here and the guest inspectors in `ikon-guest`) uses.
//!
//! Two families of integer readers, in both byte orders:
//!
//! - [`le16`], [`le32`], [`le64`], [`be16`], [`be32`], [`be64`] (and [`array`]): bounds
//!   checked. `None` when the field does not lie wholly inside the buffer, including when
//!   `at + size` overflows. Use them on buffers whose length was not verified against the
//!   field, and turn `None` into a corrupt-image error ([`field`] does that and names the byte
//!   position).
//! - [`le16_or_zero`] … [`be64_or_zero`] (and [`array_or_zero`]): for fields of a buffer whose
//!   length the caller has already verified (a fixed-size header read whole, a record whose
//!   size was checked). A field past the end reads as zero; they never panic.
//!
//! Identifiers: [`guid_string`] formats a GUID in the Microsoft mixed-endian layout (first
//! three groups little-endian: GPT, VHDX, NTFS), [`guid_from_str`] is its inverse, and
//! [`uuid_string`] formats a plain big-endian (RFC 4122 byte order) UUID (VHD, ext, XFS, …).

use crate::error::{Error, Result};

/// The `N` bytes at `at`, or `None` when they do not lie wholly inside `b`.
pub fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// The `N` bytes at `at`, zeros when they do not lie wholly inside `b` (length verified by
/// the caller).
pub fn array_or_zero<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    array(b, at).unwrap_or([0; N])
}

/// A bounds-checked field, or a `Corrupt` error naming `what` and the byte position.
pub fn field<T>(value: Option<T>, at: usize, what: &str) -> Result<T> {
    value.ok_or_else(|| Error::corrupt(format!("{what} at byte {at} is truncated")))
}

macro_rules! readers {
    ($($(#[$doc:meta])* $name:ident, $zero:ident, $t:ty, $from:ident;)*) => {$(
        $(#[$doc])*
        /// `None` when the field does not lie wholly inside `b`.
        pub fn $name(b: &[u8], at: usize) -> Option<$t> {
            array(b, at).map(<$t>::$from)
        }
        $(#[$doc])*
        /// Zero when the field does not lie wholly inside `b` (length verified by the caller).
        pub fn $zero(b: &[u8], at: usize) -> $t {
            $name(b, at).unwrap_or(0)
        }
    )*};
}

readers! {
    /// Little-endian `u16` at byte `at`.
    le16, le16_or_zero, u16, from_le_bytes;
    /// Little-endian `u32` at byte `at`.
    le32, le32_or_zero, u32, from_le_bytes;
    /// Little-endian `u64` at byte `at`.
    le64, le64_or_zero, u64, from_le_bytes;
    /// Big-endian `u16` at byte `at`.
    be16, be16_or_zero, u16, from_be_bytes;
    /// Big-endian `u32` at byte `at`.
    be32, be32_or_zero, u32, from_be_bytes;
    /// Big-endian `u64` at byte `at`.
    be64, be64_or_zero, u64, from_be_bytes;
}

macro_rules! tables {
    ($($(#[$doc:meta])* $name:ident, $reader:ident, $t:ty;)*) => {$(
        $(#[$doc])*
        /// A trailing partial entry is ignored.
        pub fn $name(raw: &[u8]) -> Vec<$t> {
            raw.chunks_exact(std::mem::size_of::<$t>())
                .map(|c| $reader(c, 0))
                .collect()
        }
    )*};
}

tables! {
    /// Every whole little-endian `u16` of `raw`, in order (UTF-16LE text, tables).
    le16_table, le16_or_zero, u16;
    /// Every whole little-endian `u32` of `raw`, in order (tables of 4-byte entries).
    le32_table, le32_or_zero, u32;
    /// Every whole big-endian `u32` of `raw`, in order (tables of 4-byte entries).
    be32_table, be32_or_zero, u32;
    /// Every whole big-endian `u64` of `raw`, in order (tables of 8-byte entries).
    be64_table, be64_or_zero, u64;
}

/// Lowercase hex of `b` in groups of 4-2-2-2-6 bytes (the 8-4-4-4-12 text form).
fn dashed(b: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Reorder between the Microsoft on-disk GUID layout and RFC 4122 byte order (the first
/// three groups are little-endian on disk); the swap is its own inverse.
fn swap_guid(g: &[u8; 16]) -> [u8; 16] {
    let mut b = *g;
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

/// Text form (lowercase `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`) of a GUID stored in the
/// Microsoft mixed-endian layout (GPT entries, VHDX, NTFS: `Data1`–`Data3` little-endian,
/// `Data4` as bytes).
pub fn guid_string(g: &[u8; 16]) -> String {
    dashed(&swap_guid(g))
}

/// On-disk bytes (Microsoft mixed-endian layout) of a GUID given in text form (hex digits in
/// any case; dashes and braces are ignored). `None` unless there are exactly 32 hex digits.
pub fn guid_from_str(s: &str) -> Option<[u8; 16]> {
    let digits: Vec<u8> = s
        .chars()
        .filter(|c| !matches!(c, '-' | '{' | '}'))
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<Vec<u8>>>()?;
    if digits.len() != 32 {
        return None;
    }
    let mut g = [0u8; 16];
    for (o, pair) in g.iter_mut().zip(digits.chunks_exact(2)) {
        *o = (pair[0] << 4) | pair[1];
    }
    Some(swap_guid(&g))
}

/// Text form (lowercase `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`) of a UUID stored in plain
/// big-endian (RFC 4122) byte order.
pub fn uuid_string(u: &[u8; 16]) -> String {
    dashed(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_are_bounds_checked() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(le16(&b, 0), Some(0x0201));
        assert_eq!(be16(&b, 6), Some(0x0708));
        assert_eq!(le32(&b, 4), Some(0x0807_0605));
        assert_eq!(be64(&b, 0), Some(0x0102_0304_0506_0708));
        assert_eq!(le64(&b, 1), None);
        assert_eq!(be32(&b, usize::MAX - 1), None);
        assert_eq!(le32_or_zero(&b, 5), 0);
        assert_eq!(be32_or_zero(&b, 0), 0x0102_0304);
        assert_eq!(array::<3>(&b, 6), None);
        assert_eq!(array_or_zero::<2>(&b, 7), [0, 0]);
        assert!(field(le64(&b, 4), 4, "x").is_err());
        assert_eq!(be64_table(&[0, 0, 0, 0, 0, 0, 0, 9, 1]), vec![9]);
        assert_eq!(le32_table(&[2, 0, 0, 0, 1]), vec![2]);
        assert_eq!(be32_table(&[0, 0, 0, 3]), vec![3]);
        assert_eq!(le16_table(&[0x41, 0, 0x42]), vec![0x41]);
    }

    #[test]
    fn guid_round_trip() {
        let text = "2DC27766-F623-4200-9D64-115E9BFD4A08";
        let g = guid_from_str(text).unwrap_or_default();
        assert_eq!(&g[..4], &[0x66, 0x77, 0xC2, 0x2D]);
        assert_eq!(guid_string(&g), text.to_ascii_lowercase());
        assert_eq!(guid_from_str("not a guid"), None);
        let u: [u8; 16] = std::array::from_fn(|i| u8::try_from(i).unwrap_or(0));
        assert_eq!(uuid_string(&u), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }
}
