//! The body of every fuzz target, shared with the in-tree mutation tests: open arbitrary
//! bytes as an image (format forced or detected, external references denied), then ask it
//! everything a caller would — info, check, the whole mapping, and reads at the start, the
//! end and the first data extents. Any panic, hang or runaway allocation here is a bug.

use crate::{open_storage, ExtentKind, Format, MemStorage, OpenContext, OpenOptions};
use std::sync::Arc;

/// Most guest bytes one exercise reads (keeps each input fast).
const READ_BUDGET: u64 = 4 << 20;

/// Open `data` as an image and exercise it. Returns whether the image opened.
pub fn exercise(data: &[u8], format: Option<Format>) -> bool {
    let options = OpenOptions {
        format,
        ..OpenOptions::default()
    };
    let ctx = OpenContext::new(options, None);
    let Ok(img) = open_storage(Arc::new(MemStorage::new(data.to_vec())), &ctx) else {
        return false;
    };
    let _ = img.info();
    let _ = img.check();
    let len = img.len();
    let mut budget = READ_BUDGET;
    let mut read = |off: u64, n: u64| {
        let n = n.min(budget).min(len.saturating_sub(off)).min(1 << 20);
        if n == 0 {
            return;
        }
        budget -= n;
        let mut buf = vec![0u8; usize::try_from(n).unwrap_or(0)];
        let _ = img.read_exact_at(&mut buf, off);
    };
    read(0, 64 << 10);
    read(len.saturating_sub(64 << 10), 64 << 10);
    if let Ok(extents) = img.map(0, len) {
        for e in extents
            .iter()
            .filter(|e| e.kind == ExtentKind::Data)
            .take(32)
        {
            read(e.offset, e.len);
        }
    }
    true
}
