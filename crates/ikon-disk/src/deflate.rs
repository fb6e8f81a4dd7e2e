//! Deflate for the compressing writers and the compressibility guard, with one reusable state
//! per thread and setting: allocating and clearing a fresh state for every 64 KiB cluster
//! cost as much as compressing it.

use std::cell::RefCell;

/// The level Ikon compresses qcow2 clusters at. qemu uses zlib's default, 6. With qcow2's
/// 4 KiB window, zlib-rs at 6 (and 7, 8) writes about 3 % more than zlib at 6 on executables;
/// at 9 it matches zlib's 6 there and does better on text, and is still faster than zlib
/// (`scripts/bench-convert.py` measures both sizes and times against qemu-img).
pub const QCOW2_LEVEL: u32 = 9;

/// The level Ikon compresses VMDK grains at. With the full 32 KiB window zlib-rs at 7 comes
/// within 2 % of zlib's 6 on executables (at 6 it is 2.3 % larger) and beats it on text, at
/// about 70 % of zlib's time; 9 would cost another 50 %.
pub const VMDK_LEVEL: u32 = 7;

/// How the compressed stream is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Raw deflate with a 4 KiB window: a qcow2 compressed cluster (qcow2 spec,
    /// "Compressed Clusters Descriptor"; qemu's `qcow2_zlib_compress` uses window bits -12).
    Qcow2,
    /// A zlib stream (RFC 1950) with the full 32 KiB window: a VMDK grain (VMware Virtual
    /// Disk Format 1.1, "Stream-Optimized Compressed Sparse Extents").
    Zlib,
    /// Raw deflate with the full window, for measuring only.
    Raw,
}

type Key = (Framing, u32);

thread_local! {
    /// This thread's deflate states, one per (framing, level) used.
    static STATES: RefCell<Vec<(Key, flate2::Compress)>> = const { RefCell::new(Vec::new()) };
}

/// `input` deflated at `level` in `framing`, or None when the output would exceed `cap`
/// bytes.
pub fn compress(input: &[u8], framing: Framing, level: u32, cap: usize) -> Option<Vec<u8>> {
    STATES.with(|cell| {
        let mut states = cell.borrow_mut();
        let key = (framing, level);
        let i = match states.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let c = flate2::Compression::new(level);
                let z = match framing {
                    Framing::Qcow2 => flate2::Compress::new_with_window_bits(c, false, 12),
                    Framing::Zlib => flate2::Compress::new(c, true),
                    Framing::Raw => flate2::Compress::new(c, false),
                };
                states.push((key, z));
                states.len() - 1
            }
        };
        let z = &mut states[i].1;
        z.reset();
        let mut out = Vec::with_capacity(cap);
        match z.compress_vec(input, &mut out, flate2::FlushCompress::Finish) {
            Ok(flate2::Status::StreamEnd) => Some(out),
            _ => {
                // A stream cut short is not reused: a fresh state is built next time.
                states.swap_remove(i);
                None
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{compress, Framing, QCOW2_LEVEL as LEVEL};
    use std::io::Read;

    #[test]
    fn reused_states_write_streams_that_inflate_back() {
        let text: Vec<u8> = (0..200_000u32)
            .map(|i| b"abcdefgh "[(i * 7 % 9) as usize])
            .collect();
        for round in 0..3 {
            let part = &text[round * 1000..];
            let z = compress(part, Framing::Zlib, LEVEL, part.len() + 1024).unwrap();
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, part);
            let r = compress(part, Framing::Qcow2, LEVEL, part.len() + 1024).unwrap();
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&r[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, part);
        }
    }

    #[test]
    fn output_past_the_cap_is_none_and_the_next_stream_is_whole() {
        let mut x = 1u64;
        let noise: Vec<u8> = (0..65536)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (x >> 56) as u8
            })
            .collect();
        for level in [1, LEVEL] {
            assert!(compress(&noise, Framing::Qcow2, level, 65536 - 512).is_none());
            let z = compress(&noise[..1000], Framing::Qcow2, level, 4096).unwrap();
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, &noise[..1000]);
        }
    }
}
