//! Fuzz the VMDK parser: open arbitrary bytes as vmdk, map and read some of it.
#![no_main]

use ikon_disk::storage::MemStorage;
use ikon_disk::{open_storage, Format, OpenContext, OpenOptions};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let options = OpenOptions {
        format: Some(Format::Vmdk),
        ..OpenOptions::default()
    };
    let ctx = OpenContext::new(options, None);
    if let Ok(disk) = open_storage(Arc::new(MemStorage::new(data.to_vec())), &ctx) {
        let len = disk.len().min(1 << 20);
        let _ = disk.map(0, len);
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        let _ = disk.read_exact_at(&mut buf, 0);
        let _ = disk.info();
        let _ = disk.check();
    }
});
