//! The `ikon` binary: `ikon img …` is the offline image toolbox; `ikon serve` runs the
//! service, `ikon admin …` administers it, `ikon image import` and `ikon nbd-url` are its
//! clients. Exit codes: 0 success; 1 a negative answer (images differ, corruption
//! found); 2 an error (unreadable, unsupported or unsafe image, bad arguments, I/O); 3 check
//! found only leaked clusters.

mod client;
mod client_scan;
mod img;
mod market;
mod nbd;
mod output;
mod publish;
mod server;
mod tls;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Ikon: virtual-machine image service and image toolbox.
#[derive(Debug, Parser)]
#[command(name = "ikon", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Offline image toolbox: info, convert, check, compare, map, inspect, precheck, scan,
    /// create.
    #[command(subcommand)]
    Img(img::ImgCommand),
    /// Run the image service (the Tencent CVM and Alibaba ECS APIs on one HTTP endpoint,
    /// metrics at /metrics, instance disks over NBD).
    Serve(server::ServeArgs),
    /// Administer accounts, keys, platform images, the marketplace, billing, storage and
    /// the policy (works beside a running server).
    Admin(server::AdminArgs),
    /// Client commands against a running service: `image import FILE`, `image scan IMAGE_ID`.
    #[command(subcommand)]
    Image(client::ImageCommand),
    /// Print the NBD URL of an instance disk, made from its owner's key pair.
    NbdUrl(nbd::NbdUrlArgs),
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`ikon img map … | head`) like other command-line tools.
    // SAFETY: resetting a signal disposition to its default at start-up, before any threads.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Img(cmd) => img::run(cmd),
        Command::Serve(args) => server::serve(args),
        Command::Admin(args) => server::admin(args),
        Command::Image(cmd) => client::run(cmd),
        Command::NbdUrl(args) => nbd::url(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ikon: {e:#}");
            ExitCode::from(img::EXIT_ERROR)
        }
    }
}
