//! What a person running the tool sees: the seed's lines, a progress bar, and a closing summary.
//!
//! Informational lines go to stdout (as the seed printed them) unless `-q`; warnings and per-account
//! failures go to stderr always. The progress bar draws on stderr only when it is a terminal
//! (indicatif hides itself otherwise), so piped and CI output stays clean.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::accounts::AccountId;
use crate::collect::{AccountReport, Observer};

/// The console for one run.
pub struct Console {
    quiet: bool,
    bar: ProgressBar,
}

impl Console {
    pub fn new(quiet: bool) -> Console {
        Console {
            quiet,
            bar: ProgressBar::hidden(),
        }
    }

    /// Starts a progress bar over `accounts` accounts (shown only on a terminal, never with -q).
    pub fn start_progress(&mut self, accounts: usize) {
        if self.quiet {
            return;
        }
        let bar =
            ProgressBar::with_draw_target(Some(accounts as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} accounts {msg}",
        ) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bar = bar;
    }

    pub fn finish_progress(&self) {
        self.bar.finish_and_clear();
    }

    /// An informational line on stdout, unless quiet.
    pub fn info(&self, line: &str) {
        if !self.quiet {
            self.bar.suspend(|| println!("{line}"));
        }
    }

    /// A warning on stderr, always.
    pub fn warn(&self, line: &str) {
        self.bar.suspend(|| eprintln!("warning: {line}"));
    }
}

impl Observer for Console {
    fn log_group(&self, account: &AccountId, log_group: &str) {
        self.info(&format!("Account {account} using log group: {log_group}"));
    }

    fn finished(&self, report: &AccountReport) {
        self.bar.inc(1);
        match &report.result {
            Ok(_) => {}
            Err(crate::collect::AccountFailure::Cancelled) => {}
            Err(failure) => {
                self.bar
                    .suspend(|| eprintln!("Account {} failed: {failure}", report.account));
                self.bar.set_message("(some failed)");
            }
        }
    }
}

/// `1234567` bytes as `1.2 MB`.
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes.max(0.0);
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(0.0), "0 B");
        assert_eq!(human_bytes(999.0), "999 B");
        assert_eq!(human_bytes(3187.0), "3.2 KB");
        assert_eq!(human_bytes(12_345_678.0), "12.3 MB");
    }
}
