//! `ikon img`: the offline toolbox commands, each a thin layer over `ikon-disk`.

mod commands;
mod inspect;
mod named;
mod progress;
mod scan;

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Exit code: success / positive answer.
pub const EXIT_OK: u8 = 0;
/// Exit code: a negative answer (images differ, corruption found).
pub const EXIT_NO: u8 = 1;
/// Exit code: an error (unreadable, unsupported, unsafe input; bad arguments; I/O).
pub const EXIT_ERROR: u8 = 2;
/// Exit code: `check` found leaked clusters but no corruption.
pub const EXIT_LEAKS: u8 = 3;

/// Output style for commands whose output is data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// For people.
    #[default]
    Human,
    /// One JSON document on stdout.
    Json,
}

/// How to open a source image.
#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// Source format (default: detected from content; the file name is never used).
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Allow backing files, data files and extent files inside this directory (refused
    /// otherwise; paths are confined to it after resolving symlinks).
    #[arg(long = "allow-external", value_name = "DIR")]
    pub allow_external: Option<PathBuf>,
}

/// The toolbox commands.
#[derive(Debug, Subcommand)]
pub enum ImgCommand {
    /// Show format, virtual size, allocation and format details of an image.
    Info {
        /// Image file.
        image: PathBuf,
        #[command(flatten)]
        src: SourceArgs,
        /// Output style.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Convert an image to another format (zero ranges stay sparse).
    Convert {
        /// Output format: raw, qcow2, vhd (alias vpc), vmdk.
        #[arg(short = 'O', long = "output-format", default_value = "raw")]
        output_format: String,
        /// Output options, qemu-img style: subformat=…, compression_type=zlib|zstd,
        /// cluster_size=…, compat=0.10|1.1, extended_l2=on, force_size=on (repeatable).
        #[arg(short = 'o', long = "options")]
        options: Vec<String>,
        /// Compress data (qcow2; VMDK streamOptimized is always compressed).
        #[arg(short = 'c', long = "compress")]
        compress: bool,
        /// Show a progress bar even when stderr is not a terminal.
        #[arg(short = 'p', long = "progress")]
        progress: bool,
        /// Never show a progress bar.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// Worker threads for reading/decompressing and compressing (default: all cores).
        #[arg(long = "threads")]
        threads: Option<usize>,
        /// How the output is written, as qemu-img's -t: none (large writes bypass the page
        /// cache; synced at the end), writeback (page cache; synced at the end), unsafe
        /// (page cache, never synced: qemu-img's default).
        #[arg(short = 't', long = "cache", default_value = "none")]
        cache: String,
        #[command(flatten)]
        src: SourceArgs,
        /// Source image.
        source: PathBuf,
        /// Destination file (created or truncated).
        dest: PathBuf,
    },
    /// Check an image's metadata for consistency (exit 0 clean, 1 corrupt, 3 leaks only).
    Check {
        /// Image file.
        image: PathBuf,
        #[command(flatten)]
        src: SourceArgs,
        /// Output style.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Compare the guest content of two images (exit 0 identical, 1 different).
    Compare {
        /// First image.
        a: PathBuf,
        /// Second image.
        b: PathBuf,
        /// Format of the first image (default: detected).
        #[arg(short = 'f')]
        format_a: Option<String>,
        /// Format of the second image (default: detected).
        #[arg(short = 'F')]
        format_b: Option<String>,
        /// Strict: images of different sizes are different.
        #[arg(short = 's', long = "strict")]
        strict: bool,
        /// Allow external references inside this directory.
        #[arg(long = "allow-external", value_name = "DIR")]
        allow_external: Option<PathBuf>,
        /// Print nothing; the exit code is the answer.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
    },
    /// Show which guest ranges hold data, zeros, or nothing.
    Map {
        /// Image file.
        image: PathBuf,
        #[command(flatten)]
        src: SourceArgs,
        /// Output style.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Tell what operating system an image holds (partitions, filesystems, OS, drivers).
    Inspect {
        /// Image file.
        image: PathBuf,
        #[command(flatten)]
        src: SourceArgs,
        /// Output style.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Check a cloud's import rules (exit 0 importable, 1 a rule fails, 2 unreadable).
    Precheck {
        /// Rules preset: tencent or alibaba (the policy `ikon serve --preset NAME` runs;
        /// default: the configuration file's preset, else tencent).
        #[arg(long = "rules")]
        rules: Option<String>,
        /// Policy file (TOML) merged onto the preset, as `ikon serve --config FILE` reads it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Image file.
        image: PathBuf,
        #[command(flatten)]
        src: SourceArgs,
        /// Output style.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Look for what the image's maker left behind: login secrets, keys, histories,
    /// credentials (exit 0 clean or `info` only, 1 a `warn` or `block` finding, 2 unreadable).
    Scan {
        /// Severities preset: tencent or alibaba (the policy `ikon serve --preset NAME` runs;
        /// default: the configuration file's preset, else tencent).
        #[arg(long = "rules")]
        rules: Option<String>,
        /// Policy file (TOML) merged onto the preset, as `ikon serve --config FILE` reads it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Image file.
        image: PathBuf,
        #[command(flatten)]
        src: SourceArgs,
        /// Output style.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Create an empty image.
    Create {
        /// Format: raw, qcow2, vhd (alias vpc), vmdk.
        #[arg(short = 'f', long = "format")]
        format: String,
        /// Options, qemu-img style (see `convert --help`).
        #[arg(short = 'o', long = "options")]
        options: Vec<String>,
        /// File to create.
        file: PathBuf,
        /// Virtual size: bytes or with a suffix (k, M, G, T).
        size: String,
    },
}

/// Run one toolbox command; returns the exit code.
pub fn run(cmd: ImgCommand) -> anyhow::Result<u8> {
    match cmd {
        ImgCommand::Info { image, src, output } => commands::info(&image, &src, output),
        ImgCommand::Convert {
            output_format,
            options,
            compress,
            progress,
            quiet,
            threads,
            cache,
            src,
            source,
            dest,
        } => {
            let show = !quiet && (progress || progress::stderr_is_terminal());
            commands::convert(&commands::ConvertArgs {
                output_format: &output_format,
                options: &options,
                compress,
                show_progress: show,
                threads,
                cache: &cache,
                src: &src,
                source: &source,
                dest: &dest,
            })
        }
        ImgCommand::Check { image, src, output } => commands::check(&image, &src, output),
        ImgCommand::Compare {
            a,
            b,
            format_a,
            format_b,
            strict,
            allow_external,
            quiet,
        } => commands::compare(&a, &b, format_a, format_b, strict, allow_external, quiet),
        ImgCommand::Map { image, src, output } => commands::map(&image, &src, output),
        ImgCommand::Inspect { image, src, output } => inspect::inspect(&image, &src, output),
        ImgCommand::Precheck {
            rules,
            config,
            image,
            src,
            output,
        } => inspect::precheck(&image, &src, rules.as_deref(), config.as_deref(), output),
        ImgCommand::Scan {
            rules,
            config,
            image,
            src,
            output,
        } => scan::scan(&image, &src, rules.as_deref(), config.as_deref(), output),
        ImgCommand::Create {
            format,
            options,
            file,
            size,
        } => commands::create(&format, &options, &file, &size),
    }
}
