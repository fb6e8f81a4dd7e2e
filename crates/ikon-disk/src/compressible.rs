//! A cheap guess, made before compressing a cluster or grain, whether compression would save
//! anything: random, encrypted and already-compressed data is stored as it is, sparing a full
//! compression whose result would be thrown away.
//!
//! Three 1 KiB samples (start, middle, end) are judged two ways, and a sample counts what the
//! better of the two would save:
//! - deflate at its fastest level, which finds repeats (zeros, padding, repeated records) but
//!   codes literals with deflate's fixed Huffman table only, so it sees no gain in text whose
//!   bytes are merely drawn from a small alphabet (hex, base64, logs, JSON);
//! - the sample's order-0 entropy (with the Miller–Madow correction for the small sample),
//!   which is what entropy coding alone can save on such text.
//!
//! When the samples together would save less than 3 %, the whole unit is judged
//! incompressible.

/// Bytes in each of the three samples.
const SAMPLE: usize = 1024;

/// Below this saving, in percent of the sampled bytes, a unit is stored uncompressed.
const MIN_SAVING_PERCENT: f64 = 3.0;

/// Whether `data` is judged not worth compressing. Units shorter than four samples are always
/// worth a try.
pub fn incompressible(data: &[u8]) -> bool {
    if data.len() < 4 * SAMPLE {
        return false;
    }
    let mid = data.len() / 2 - SAMPLE / 2;
    let mut saved = 0.0f64;
    for at in [0, mid, data.len() - SAMPLE] {
        let sample = &data[at..at + SAMPLE];
        let by_repeats = fast_deflate_len(sample).map_or(0, |n| SAMPLE.saturating_sub(n));
        saved += entropy_saving(sample).max(usize_f64(by_repeats));
    }
    saved * 100.0 < MIN_SAVING_PERCENT * usize_f64(3 * SAMPLE)
}

/// Length of `sample` deflated at the fastest level.
fn fast_deflate_len(sample: &[u8]) -> Option<usize> {
    // Twice the sample always holds the stream (fixed codes take at most 9 bits a byte).
    crate::deflate::compress(sample, crate::deflate::Framing::Raw, 1, 2 * SAMPLE).map(|z| z.len())
}

/// Bytes an ideal order-0 entropy coder would save on `sample`: its length less the estimated
/// coded length, `Σ c·log2(n/c)` bits over the byte counts `c`, plus the Miller–Madow
/// correction `(k−1)/(2·ln 2)` bits for `k` distinct bytes, without which a 1 KiB sample of
/// random bytes looks about 2 % compressible.
fn entropy_saving(sample: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in sample {
        counts[usize::from(b)] += 1;
    }
    let n = usize_f64(sample.len());
    let mut bits = 0.0f64;
    let mut distinct = 0u32;
    for &c in counts.iter().filter(|&&c| c > 0) {
        let c = f64::from(c);
        bits += c * (n / c).log2();
        distinct += 1;
    }
    bits += f64::from(distinct.saturating_sub(1)) / (2.0 * std::f64::consts::LN_2);
    (n - bits / 8.0).max(0.0)
}

/// A byte count as f64 (exact for every length a sample can have).
fn usize_f64(n: usize) -> f64 {
    u32::try_from(n).map_or(f64::MAX, f64::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::incompressible;

    /// Deterministic pseudo-random bytes (xorshift64*), standing in for encrypted data.
    fn random(len: usize, mut seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn encode(data: &[u8], alphabet: &[u8]) -> Vec<u8> {
        data.iter()
            .map(|b| alphabet[usize::from(*b) % alphabet.len()])
            .collect()
    }

    #[test]
    fn random_bytes_are_incompressible() {
        for seed in 1..50 {
            assert!(incompressible(&random(65536, seed)), "seed {seed}");
        }
    }

    #[test]
    fn deflated_data_is_incompressible() {
        use std::io::Write;
        let text = encode(&random(400_000, 7), b"abcdefghijklmnopqrstuvwxyz .,\n");
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&text).unwrap();
        let packed = z.finish().unwrap();
        assert!(incompressible(&packed[..65536]));
    }

    #[test]
    fn text_from_a_small_alphabet_is_compressible() {
        let hex = encode(&random(65536, 3), b"0123456789abcdef");
        assert!(!incompressible(&hex), "hex");
        let b64 = encode(
            &random(65536, 4),
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        );
        assert!(!incompressible(&b64), "base64");
    }

    #[test]
    fn zeros_and_repeats_are_compressible() {
        assert!(!incompressible(&[0u8; 65536]));
        let block = random(512, 9);
        let repeated: Vec<u8> = block.iter().copied().cycle().take(65536).collect();
        assert!(!incompressible(&repeated));
    }

    #[test]
    fn short_units_are_always_tried() {
        assert!(!incompressible(&random(2048, 5)));
    }
}
