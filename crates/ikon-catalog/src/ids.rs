//! Identifiers and times: resource ids (`img-` + 8 lower-case letters or digits), account
//! ids (12 digits), API key material, RequestIds (UUID v4), and UTC calendar formatting
//! (ISO-8601 and `YYYY-MM-DD`) without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    if getrandom::getrandom(&mut b).is_err() {
        // The OS RNG is unavailable: fall back to a time-seeded mix (ids only need
        // uniqueness; secrets are never issued without the OS RNG, see `secret`).
        let mut x = now_nanos() | 1;
        for v in &mut b {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *v = x.to_le_bytes()[0];
        }
    }
    b
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(1))
        .unwrap_or(0)
}

fn pick(alphabet: &[u8], n: usize) -> String {
    // Rejection sampling keeps the distribution uniform.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes(n * 2) {
            if usize::from(b) < limit && out.len() < n {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    out
}

/// A new resource id: `prefix-` + 8 lower-case letters or digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", pick(ALNUM, 8))
}

/// Whether `id` has the `prefix-xxxxxxxx` shape.
pub fn is_well_formed(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|r| r.len() == 8 && r.bytes().all(|b| ALNUM.contains(&b)))
}

/// A new 12-digit account id.
pub fn new_account_id() -> String {
    let mut s = pick(b"123456789", 1);
    s.push_str(&pick(b"0123456789", 11));
    s
}

/// New API key material: (`AKID…` 36 chars, 32-char secret).
pub fn new_key_pair() -> Result<(String, String), String> {
    let mut probe = [0u8; 1];
    getrandom::getrandom(&mut probe).map_err(|e| format!("no OS random source: {e}"))?;
    Ok((
        format!("AKID{}", pick(KEY_ALPHABET, 32)),
        pick(KEY_ALPHABET, 32),
    ))
}

/// A UUID v4 string.
pub fn uuid4() -> String {
    let mut b = random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Now, in unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` (UTC) of a unix time.
pub fn utc_date(ts: i64) -> String {
    let (y, m, d) = civil(ts.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDThh:mm:ssZ` of a unix time.
pub fn iso8601(ts: i64) -> String {
    let secs = ts.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        utc_date(ts),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `YYYY-MM-DD hh:mm:ss` of a unix time (CBS style).
pub fn date_time(ts: i64) -> String {
    let secs = ts.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02}",
        utc_date(ts),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(utc_date(1_551_113_065), "2019-02-25");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(date_time(1_700_000_000), "2023-11-14 22:13:20");
    }

    #[test]
    fn ids_have_the_documented_shape() {
        for _ in 0..100 {
            let id = new_id("img");
            assert!(is_well_formed("img", &id), "{id}");
        }
        assert!(!is_well_formed("img", "img-ABCDEFGH"));
        assert!(!is_well_formed("img", "img-1234567"));
        assert!(!is_well_formed("img", "ins-12345678"));
        let a = new_account_id();
        assert_eq!(a.len(), 12);
        assert_eq!(uuid4().len(), 36);
    }
}

/// Days since 1970-01-01 of a (proleptic Gregorian) date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `[start, end)` in unix seconds of a `YYYY-MM` month (UTC), or None if malformed.
pub fn month_range(month: &str) -> Option<(i64, i64)> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i64, i64) = (y.parse().ok()?, m.parse().ok()?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    let start = days_from_civil(y, m, 1) * 86_400;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    Some((start, days_from_civil(ny, nm, 1) * 86_400))
}

#[cfg(test)]
mod month_tests {
    #[test]
    fn months() {
        assert_eq!(super::month_range("1970-01"), Some((0, 31 * 86_400)));
        let (s, e) = super::month_range("2024-02").unwrap_or((0, 0));
        assert_eq!(super::utc_date(s), "2024-02-01");
        assert_eq!((e - s) / 86_400, 29);
        assert_eq!(super::utc_date(e), "2024-03-01");
        assert!(super::month_range("2024-13").is_none());
        assert!(super::month_range("24-01").is_none());
    }
}
