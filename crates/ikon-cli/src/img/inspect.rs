//! `ikon img inspect` and `ikon img precheck`: what OS an image holds and whether a cloud's
//! import rules accept it (exit 0 importable, 1 a rule fails, 2 unreadable).

use super::{OutputFormat, SourceArgs, EXIT_NO, EXIT_OK};
use anyhow::Result;
use ikon_disk::{ExternalPolicy, Format, OpenOptions};
use ikon_guest::rules::{self, Verdict};
use ikon_guest::Inspection;
use serde_json::json;
use std::path::Path;

fn load(path: &Path, src: &SourceArgs) -> Result<Inspection> {
    let mut o = OpenOptions::default();
    if let Some(f) = &src.format {
        o.format = Some(Format::parse(f)?);
    }
    if let Some(dir) = &src.allow_external {
        o.policy = ExternalPolicy::allow_dir(dir)?;
    }
    let img = ikon_disk::open(path, &o)?;
    let fmt = img.info().format.name();
    Ok(ikon_guest::inspect(img.as_ref(), fmt)?)
}

fn print_human(ins: &Inspection) {
    println!("format: {}", ins.format);
    println!("virtual size: {} bytes", ins.virtual_size);
    let t = &ins.partition_table;
    println!(
        "partition table: {:?} (sector {} bytes)",
        t.kind, t.sector_size
    );
    for f in &ins.filesystems {
        println!(
            "  partition {}: offset {} size {} {}{}",
            f.partition,
            f.offset,
            f.size,
            f.info.fs_type.name(),
            f.info
                .label
                .as_ref()
                .map(|l| format!(" label {l}"))
                .unwrap_or_default()
        );
    }
    for os in &ins.operating_systems {
        println!(
            "os: {} (root on partition {}, {})",
            os.os_type,
            os.root_partition,
            os.root_fs.name()
        );
        if let Some(l) = &os.linux {
            println!("  distro: {} {} ({})", l.distro, l.version, l.name);
            println!(
                "  arch: {} {}-bit",
                l.arch.as_deref().unwrap_or("?"),
                l.bits.unwrap_or(0)
            );
            println!("  kernels: {}", l.kernels.join(", "));
            println!("  virtio: blk={} net={}", l.virtio_blk, l.virtio_net);
            println!("  fstab root: {}", l.fstab_root.as_deref().unwrap_or("?"));
            println!("  hostname: {}", l.hostname.as_deref().unwrap_or("?"));
            println!("  cloud-init: {}", l.cloud_init);
            println!("  nics: {} ipv6: {}", l.nics.join(","), l.ipv6);
        }
    }
    for p in &ins.problems {
        println!("problem: {p}");
    }
}

/// `ikon img inspect`.
pub fn inspect(path: &Path, src: &SourceArgs, output: OutputFormat) -> Result<u8> {
    let ins = load(path, src)?;
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&ins)?),
        OutputFormat::Human => print_human(&ins),
    }
    Ok(EXIT_OK)
}

/// `ikon img precheck`.
/// The guest checks are the policy's (`preset`, or the file's, merged with `config`), read
/// exactly as `ikon serve --preset … --config …` reads them.
pub fn precheck(
    path: &Path,
    src: &SourceArgs,
    preset: Option<&str>,
    config: Option<&Path>,
    output: OutputFormat,
) -> Result<u8> {
    let cfg = ikon_service::Config::load_with(config, preset)?.guest_rules();
    let ins = load(path, src)?;
    let verdicts = rules::evaluate(&ins, &cfg);
    let ok = rules::importable(&verdicts);
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "rules": cfg.name,
                "importable": ok,
                "verdicts": verdicts,
                "inspection": ins,
            }))?
        ),
        OutputFormat::Human => {
            for r in &verdicts {
                let v = match r.verdict {
                    Verdict::Pass => "pass",
                    Verdict::Fail => "FAIL",
                    Verdict::Warn => "warn",
                };
                println!("{v:4}  {:16} {}", r.id, r.message);
            }
            println!("{}", if ok { "importable" } else { "NOT importable" });
        }
    }
    Ok(if ok { EXIT_OK } else { EXIT_NO })
}
