//! Fuzz the registry (regf) reader: arbitrary bytes as a hive; walking keys and reading
//! values must never panic or loop.
#![no_main]

use ikon_guest::regf::Hive;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Hive::new(data.to_vec()) {
        if let Ok(root) = h.root() {
            if let Ok(subs) = h.subkeys(root) {
                for (_, k) in subs.into_iter().take(64) {
                    let _ = h.subkeys(k);
                    if let Ok(names) = h.value_names(k) {
                        for n in names.iter().take(16) {
                            let _ = h.value(k, n);
                        }
                    }
                }
            }
        }
        let _ = h.open_key("Microsoft\\Windows NT\\CurrentVersion");
    }
});
