//! How the service-side commands print their answers: text for people or JSON for scripts
//! (`--output text|json`), one place for every command.

/// Output format of admin commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Human-readable.
    Text,
    /// JSON.
    Json,
}

/// Prints `v` as JSON, or `text()` for people.
pub fn print<T: serde::Serialize>(
    output: Output,
    v: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(v)?),
        Output::Text => println!("{}", text()),
    }
    Ok(())
}
