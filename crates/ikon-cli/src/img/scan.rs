//! `ikon img scan`: what an image's maker left behind (exit 0 clean or `info` only, 1 a
//! `warn` or `block` finding, 2 unreadable). Severities are the policy's, read exactly as
//! `ikon serve --preset … --config …` reads them; no secret value is ever printed.

use super::{OutputFormat, SourceArgs, EXIT_ERROR, EXIT_NO, EXIT_OK};
use anyhow::Result;
use ikon_disk::CountingDevice;
use ikon_guest::scan::{Scan, Severity};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

fn exit_code(s: &Scan) -> u8 {
    match s.worst() {
        Some(Severity::Warn | Severity::Block) => EXIT_NO,
        _ if s.scanned.is_empty() || !s.problems.is_empty() => EXIT_ERROR,
        _ => EXIT_OK,
    }
}

fn print_human(s: &Scan, read: u64, ms: f64) {
    for f in &s.findings {
        println!("{:5}  {:20} {}", f.severity.name(), f.id, f.path);
        println!("       {}", f.message);
    }
    for p in &s.problems {
        println!("problem: {p}");
    }
    if s.scanned.is_empty() {
        println!("no operating system found that Ikon can read: nothing was scanned");
        return;
    }
    println!(
        "{} block, {} warn, {} info ({} scanned in {ms:.1} ms, {:.1} MiB read)",
        s.count(Severity::Block),
        s.count(Severity::Warn),
        s.count(Severity::Info),
        s.scanned.join(", "),
        f64::from(u32::try_from(read >> 10).unwrap_or(u32::MAX)) / 1024.0
    );
}

/// `ikon img scan`.
pub fn scan(
    path: &Path,
    src: &SourceArgs,
    preset: Option<&str>,
    config: Option<&Path>,
    output: OutputFormat,
) -> Result<u8> {
    let cfg = ikon_service::Config::load_with(config, preset)?.scan_rules();
    let started = Instant::now();
    let img = super::commands::open_src(path, src)?;
    let dev = CountingDevice::new(img.as_ref());
    let ins = ikon_guest::inspect(&dev, img.info().format.name())?;
    let s = ikon_guest::scan::scan(&dev, &ins, &cfg);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "rules": cfg.name,
                "findings": s.findings,
                "scanned": s.scanned,
                "problems": s.problems,
                "clean": s.worst().is_none_or(|w| w == Severity::Info),
                "read_bytes": dev.bytes(),
                "elapsed_ms": ms,
            }))?
        ),
        OutputFormat::Human => print_human(&s, dev.bytes(), ms),
    }
    Ok(exit_code(&s))
}
