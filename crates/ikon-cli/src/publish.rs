//! `ikon admin image …`: publish a disk image file as a platform (public) image, or as a
//! custom image of an account (subject to its quota).

use crate::output::Output;
use anyhow::Result;
use clap::Subcommand;
use ikon_service::{PublishRequest, Service};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// `ikon admin image …`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Publish FILE (raw, qcow2, vhd, vmdk, vhdx, ...; detected from content). OS fields are
    /// filled from guest inspection unless given.
    Publish {
        /// Region holding the image.
        #[arg(long)]
        region: String,
        /// Image name (with --count N: NAME-00001 …).
        #[arg(long)]
        name: String,
        /// OS name (default: from inspection).
        #[arg(long)]
        os_name: Option<String>,
        /// Platform (default: from inspection).
        #[arg(long)]
        platform: Option<String>,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// Image family.
        #[arg(long, default_value = "")]
        family: String,
        /// Make a custom image of this account instead of a public image.
        #[arg(long)]
        account: Option<String>,
        /// Catalog entries to create sharing the one stored copy (load tests).
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Disk image file.
        file: PathBuf,
    },
}

/// Runs an image command.
pub async fn run(svc: &Service, cmd: ImageCommand) -> Result<u8> {
    match cmd {
        ImageCommand::Publish {
            region,
            name,
            os_name,
            platform,
            description,
            family,
            account,
            count,
            output,
            file,
        } => {
            let bar = if std::io::stderr().is_terminal() && output == Output::Text {
                let b = ProgressBar::new(0);
                b.set_style(
                    ProgressStyle::with_template(
                        "{spinner} storing [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                Some(b)
            } else {
                None
            };
            let pb = bar.clone();
            let progress: Arc<dyn Fn(u64, u64) + Send + Sync> = Arc::new(move |done, total| {
                if let Some(b) = &pb {
                    b.set_length(total);
                    b.set_position(done);
                }
            });
            let req = PublishRequest {
                file,
                region,
                name,
                description,
                os_name,
                platform,
                account,
                family,
                count,
            };
            let result = svc.admin().publish_image(&req, progress).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let p = match result {
                Ok(p) => p,
                // A refusal under the service's rules (quota, duplicate name, bad input) is a
                // negative answer (exit 1); anything else is an error (exit 2).
                Err(e)
                    if e.kind != ikon_service::ErrorKind::Internal
                        && e.kind != ikon_service::ErrorKind::Storage =>
                {
                    eprintln!("ikon: {}: {}", error_code(&e), e.chain());
                    return Ok(1);
                }
                Err(e) => anyhow::bail!("{}: {}", error_code(&e), e.chain()),
            };
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&p)?),
                Output::Text => println!(
                    "published {} ({} {}, {} bytes; {} bytes of data, {} newly stored){}",
                    p.image_id,
                    p.format,
                    if p.os_name.is_empty() {
                        "unknown OS"
                    } else {
                        &p.os_name
                    },
                    p.virtual_size,
                    p.data_bytes,
                    p.new_bytes,
                    if p.image_ids.len() > 1 {
                        format!(" and {} more entries", p.image_ids.len() - 1)
                    } else {
                        String::new()
                    }
                ),
            }
            Ok(0)
        }
    }
}

/// The Tencent code for an admin-side error, so scripts can match on it (the Tencent
/// dialect's own mapping, as `ImportImage` reports it).
fn error_code(e: &ikon_service::Error) -> String {
    ikon_api::tencent::errors::map("ImportImage", e.clone()).code
}
