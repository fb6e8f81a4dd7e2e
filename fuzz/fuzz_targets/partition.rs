//! Fuzz the partition-table, filesystem-signature, ext4 and Linux-detection code: arbitrary
//! bytes are a raw disk; `inspect` must never panic.
#![no_main]

use ikon_disk::{Format, MemStorage, OpenContext, OpenOptions};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let o = OpenOptions { format: Some(Format::Raw), ..OpenOptions::default() };
    if let Ok(img) = ikon_disk::open_storage(Arc::new(MemStorage::new(data.to_vec())), &OpenContext::new(o, None)) {
        let _ = ikon_guest::partition::read_table(img.as_ref());
        let _ = ikon_guest::inspect(img.as_ref(), "raw");
    }
});
