//! `ikon img inspect` and `ikon img precheck`: what OS an image holds and whether a cloud's
//! import rules accept it (exit 0 importable, 1 a rule fails, 2 unreadable).

use super::{OutputFormat, SourceArgs, EXIT_NO, EXIT_OK};
use anyhow::Result;
use ikon_guest::rules::{self, Verdict};
use ikon_guest::Inspection;
use serde_json::json;
use std::path::Path;

fn load(path: &Path, src: &SourceArgs) -> Result<Inspection> {
    let img = super::commands::open_src(path, src)?;
    let fmt = img.info().format.name();
    Ok(ikon_guest::inspect(img.as_ref(), fmt)?)
}

/// Bytes for people: `10 GiB`, `512 MiB`, `3.5 KiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut unit = 0;
    while unit + 1 < UNITS.len() && v >= 1024 && v & 1023 == 0 {
        v /= 1024;
        unit += 1;
    }
    if unit > 0 || bytes < 1024 {
        return format!("{v} {}", UNITS[unit]);
    }
    #[allow(clippy::cast_precision_loss)]
    let (mut f, mut unit) = (bytes as f64, 0);
    while f >= 1024.0 && unit + 1 < UNITS.len() {
        f /= 1024.0;
        unit += 1;
    }
    format!("{f:.1} {}", UNITS[unit])
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn print_human(ins: &Inspection) {
    use ikon_guest::TableKind;
    println!("file format: {}", ins.format);
    println!(
        "virtual size: {} ({} bytes)",
        human(ins.virtual_size),
        ins.virtual_size
    );
    let t = &ins.partition_table;
    let whole_disk = t.kind == TableKind::None;
    match t.kind {
        TableKind::Mbr => println!("partition table: MBR ({}-byte sectors)", t.sector_size),
        TableKind::Gpt => println!("partition table: GPT ({}-byte sectors)", t.sector_size),
        TableKind::None => println!("partition table: none"),
    }
    let found: Vec<_> = ins
        .filesystems
        .iter()
        .filter(|f| f.info.fs_type != ikon_guest::FsType::Unknown || !whole_disk)
        .collect();
    if found.is_empty() {
        println!("filesystems: none found");
    } else {
        println!("filesystems:");
    }
    for f in found {
        let place = if whole_disk {
            "whole disk".to_string()
        } else {
            format!("partition {}", f.partition)
        };
        let mut line = format!(
            "  {place}: {}, {} at offset {}",
            f.info.fs_type.name(),
            human(f.size),
            f.offset
        );
        if let Some(l) = f.info.label.as_deref().filter(|l| !l.is_empty()) {
            line.push_str(&format!(", label {l:?}"));
        }
        if let Some(u) = &f.info.uuid {
            line.push_str(&format!(", uuid {u}"));
        }
        println!("{line}");
    }
    if ins.operating_systems.is_empty() {
        println!("operating system: none found");
    }
    for os in &ins.operating_systems {
        let root = if whole_disk {
            "the whole disk".to_string()
        } else {
            format!("partition {}", os.root_partition)
        };
        println!("operating system: {}", os.os_type);
        println!("  root filesystem: {} on {root}", os.root_fs.name());
        // libosinfo's id, as virt-inspector's <osinfo> ("unknown" when it has none).
        let osinfo = format!("  osinfo: {}", os.osinfo.as_deref().unwrap_or("unknown"));
        if let Some(l) = &os.linux {
            let name = if l.name.is_empty() {
                &l.distro
            } else {
                &l.name
            };
            println!("  distribution: {name} {} ({})", l.version, l.distro);
            println!("{osinfo}");
            let arch = l.arch.as_deref().unwrap_or("unknown architecture");
            match l.bits {
                Some(b) => println!("  architecture: {arch} ({b}-bit)"),
                None => println!("  architecture: {arch}"),
            }
            if l.kernels.is_empty() {
                println!("  kernels: none found");
            } else {
                println!("  kernels: {}", l.kernels.join(", "));
            }
            println!(
                "  virtio drivers: block {}, network {}",
                yes_no(l.virtio_blk),
                yes_no(l.virtio_net)
            );
            if let Some(r) = &l.fstab_root {
                println!("  fstab root: {r}");
            }
            if let Some(h) = &l.hostname {
                println!("  hostname: {h}");
            }
            println!("  cloud-init: {}", yes_no(l.cloud_init));
            if l.nics.is_empty() {
                println!("  network interfaces: none configured");
            } else {
                println!("  network interfaces: {}", l.nics.join(", "));
            }
            println!("  IPv6: {}", if l.ipv6 { "enabled" } else { "not enabled" });
        }
        if let Some(w) = &os.windows {
            println!(
                "  product: {} (version {}, build {})",
                w.product_name, w.version, w.build
            );
            println!("{osinfo}");
            println!("  edition: {}", if w.server { "server" } else { "client" });
            let arch = w.arch.as_deref().unwrap_or("unknown architecture");
            match w.bits {
                Some(b) => println!("  architecture: {arch} ({b}-bit)"),
                None => println!("  architecture: {arch}"),
            }
            println!(
                "  virtio drivers: storage {}, network {}",
                yes_no(w.virtio_storage),
                yes_no(w.virtio_net)
            );
            if let Some(h) = &w.hostname {
                println!("  hostname: {h}");
            }
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
