//! Fuzz target: open arbitrary bytes as VHD (format forced), then map and read some of it.
#![no_main]

use ikon_disk::{Format, MemStorage, OpenContext, OpenOptions};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let ctx = OpenContext::new(
        OpenOptions {
            format: Some(Format::Vhd),
            ..Default::default()
        },
        None,
    );
    let Ok(img) = ikon_disk::open_storage(Arc::new(MemStorage::new(data.to_vec())), &ctx) else {
        return;
    };
    let _ = img.info();
    let _ = img.check();
    let len = img.len();
    if let Ok(extents) = img.map(0, len.min(1 << 30)) {
        let mut buf = vec![0u8; 64 << 10];
        for e in extents.iter().take(16) {
            let n = e.len.min(buf.len() as u64) as usize;
            let _ = img.read_exact_at(&mut buf[..n], e.offset);
        }
    }
    let mut buf = vec![0u8; 4096];
    if len >= 4096 {
        let _ = img.read_exact_at(&mut buf, len - 4096);
    }
});
