//! Progress bar for long toolbox operations: drawn in place on a terminal; asked for with
//! `-p` when stderr is not a terminal (a log, a pipe), one plain progress line a second.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use std::io::{IsTerminal, Write};

/// True when stderr is a terminal.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Stderr that is not a terminal: no cursor movement, each draw a line of its own.
#[derive(Debug)]
struct PlainStderr;

impl TermLike for PlainStderr {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        writeln!(std::io::stderr(), "{s}")
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        if s.trim().is_empty() {
            return Ok(());
        }
        writeln!(std::io::stderr(), "{s}")
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A byte-progress bar, or a hidden one when `show` is false.
pub fn bar(total: u64, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = if stderr_is_terminal() {
        ProgressBar::new(total)
    } else {
        ProgressBar::with_draw_target(
            Some(total),
            ProgressDrawTarget::term_like_with_hz(Box::new(PlainStderr), 1),
        )
    };
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb
}

/// Where a copy stands in terms of the source's data: a copy walks guest offsets, but only
/// data extents cost time (unallocated and zero ranges pass in a moment), so a bar over the
/// virtual size would promise minutes for a mostly empty 10 GiB disk copied in seconds.
pub struct DataProgress {
    /// Start and end of every data extent, in order.
    extents: Vec<(u64, u64)>,
    /// Data bytes in the extents before each one.
    before: Vec<u64>,
    /// All data bytes.
    pub total: u64,
}

impl DataProgress {
    /// The data extents of `src`; None when its map cannot be read (the bar then counts
    /// guest offsets).
    pub fn of(src: &dyn ikon_disk::BlockDevice) -> Option<DataProgress> {
        let mut extents = Vec::new();
        super::commands::each_extent(src, |e| {
            if e.kind == ikon_disk::ExtentKind::Data {
                extents.push((e.offset, e.offset.saturating_add(e.len)));
            }
        })
        .ok()?;
        let mut before = Vec::with_capacity(extents.len());
        let mut total = 0u64;
        for (s, e) in &extents {
            before.push(total);
            total = total.saturating_add(e - s);
        }
        Some(DataProgress {
            extents,
            before,
            total,
        })
    }

    /// Data bytes below guest offset `done`.
    pub fn at(&self, done: u64) -> u64 {
        // The last extent starting below `done`.
        let i = self.extents.partition_point(|(s, _)| *s < done);
        if i == 0 {
            return 0;
        }
        let (s, e) = self.extents[i - 1];
        self.before[i - 1] + done.min(e) - s
    }
}

#[cfg(test)]
mod tests {
    use super::DataProgress;

    #[test]
    fn counts_only_data_below_an_offset() {
        let p = DataProgress {
            extents: vec![(100, 200), (1000, 1500)],
            before: vec![0, 100],
            total: 600,
        };
        assert_eq!(p.at(0), 0);
        assert_eq!(p.at(150), 50);
        assert_eq!(p.at(200), 100);
        assert_eq!(p.at(999), 100);
        assert_eq!(p.at(1200), 300);
        assert_eq!(p.at(5000), 600);
    }
}
