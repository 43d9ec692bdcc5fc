//! The command line: flags, their validation into a [`Config`], and the three commands.
//!
//! Flags are parsed by clap into [`Cli`] (low level: strings and numbers as typed), then checked and
//! turned into [`Config`] (high level: a [`Span`], a poll policy, SDK settings), so that every bad
//! value is reported before anything is read or sent. Errors are typed ([`RunError`]) and mapped to
//! exit codes in one place, [`RunError::exit_code`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::accounts::{AccountsError, AccountsFile};
use crate::aws::{self, AwsSettings};
use crate::chart::{self, ChartError, Series};
use crate::collect::{self, AccountFailure, AccountReport, CollectOptions};
use crate::console::{Console, human_bytes};
use crate::csv_file::{self, CsvError, CsvRow};
use crate::insights::{MetricRow, PollPolicy};
use crate::output::{self, Existing, OutputError};
use crate::window::{Granularity, Span, WindowError, format_utc};

/// Exit codes, as documented in README.md and `--help`.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FATAL: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const SOME_ACCOUNTS_FAILED: u8 = 3;
    pub const CANCELLED: u8 = 130;
}

const AFTER_HELP: &str = "\
Examples:
  mvl-monitor                                   collect the last 24 h from accounts.yaml
  mvl-monitor collect --accounts prod.yaml --out-dir reports
  mvl-monitor collect --range-hours 48 --granularity-minutes 15 --end 2026-12-02T15:00:00Z
  mvl-monitor check --accounts prod.yaml        verify identities, stacks and log groups only
  mvl-monitor plot reports/metrics_20261202_150000.csv -o chart.png

Exit codes:
  0    every account succeeded
  1    fatal error (e.g. output directory not writable, every account failed)
  2    bad usage or bad accounts file (nothing was queried)
  3    some accounts failed; the others' results were written
  130  interrupted (Ctrl-C or SIGTERM): running queries stopped, no files written";

/// Collects MVL completeness from CloudWatch Logs Insights across AWS accounts, into a CSV and a chart.
#[derive(Debug, Parser)]
#[command(name = "mvl-monitor", version, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command, `collect` runs with these flags.
    #[command(flatten)]
    collect: CollectArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Query every account and write the CSV and the chart (the default command).
    #[command(after_help = AFTER_HELP)]
    Collect(CollectArgs),
    /// Only verify every account: identity, stack output, log group. Prints a table.
    #[command(after_help = AFTER_HELP)]
    Check(CommonArgs),
    /// Render the chart from a CSV written by `collect`.
    Plot(PlotArgs),
}

/// Flags shared by `collect` and `check`.
#[derive(Debug, Args, Clone)]
struct CommonArgs {
    /// The accounts file (YAML; see README.md).
    #[arg(long, value_name = "PATH", default_value = "accounts.yaml")]
    accounts: PathBuf,
    /// AWS region for accounts that set none [default: from AWS_REGION or the profile, else us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// CloudFormation stack that publishes the log group name.
    #[arg(long, default_value = "elephant-oracle-node")]
    stack_name: String,
    /// Stack output holding the log group name.
    #[arg(long, default_value = "WorkflowMirrorValidatorLogGroupName")]
    output_key: String,
    /// Accounts processed at once.
    #[arg(long, value_name = "N", default_value_t = 128)]
    max_workers: usize,
    /// Send every AWS call (STS included) to this URL, e.g. a local emulator.
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// Only print warnings and errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Print diagnostics to stderr (-v: ours, -vv: the AWS SDK's too).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Args, Clone)]
struct CollectArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Hours of history to read.
    #[arg(long, value_name = "H", default_value_t = 24)]
    range_hours: u32,
    /// Width of each window, in minutes (windows are aligned to it in UTC).
    #[arg(long, value_name = "M", default_value_t = 60)]
    granularity_minutes: u32,
    /// End of the last window (RFC 3339, e.g. 2026-12-02T15:00:00Z), floored to the granularity [default: now].
    #[arg(long, value_name = "TIME")]
    end: Option<String>,
    /// Where the CSV and PNG are written (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out_dir: PathBuf,
    /// Write the CSV only.
    #[arg(long)]
    no_plot: bool,
    /// Stop a query still running after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    query_timeout: u64,
    /// Logs Insights queries running at once per account (AWS allows 30 per account, shared).
    #[arg(long, value_name = "N", default_value_t = 4)]
    max_queries_per_account: usize,
}

#[derive(Debug, Args)]
struct PlotArgs {
    /// A CSV written by `mvl-monitor collect`.
    csv: PathBuf,
    /// The PNG to write [default: the CSV's name with .png].
    #[arg(short, long, value_name = "PNG")]
    output: Option<PathBuf>,
    /// Chart title.
    #[arg(long, default_value = "MVL completeness by account and county")]
    title: String,
}

/// Everything that ends a run early. The message says what is wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error(transparent)]
    Csv(#[from] CsvError),
    #[error("every account failed; no files were written")]
    AllAccountsFailed,
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("interrupted: running queries were stopped, no files were written")]
    Cancelled,
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) | RunError::Accounts(_) => exit::USAGE,
            RunError::Cancelled => exit::CANCELLED,
            _ => exit::FATAL,
        }
    }
}

impl From<WindowError> for RunError {
    fn from(err: WindowError) -> Self {
        RunError::Usage(err.to_string())
    }
}

/// The validated configuration of a `collect` or `check` run.
#[derive(Debug, Clone)]
pub struct Config {
    pub accounts: PathBuf,
    pub aws: AwsSettings,
    pub collect: CollectOptions,
    pub out_dir: PathBuf,
    pub plot: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub run_time: Timestamp,
}

impl Config {
    fn from_collect(args: CollectArgs, now: Timestamp) -> Result<Config, RunError> {
        let granularity = Granularity::from_minutes(args.granularity_minutes)?;
        let end = match &args.end {
            None => now,
            Some(text) => parse_end(text)?,
        };
        let span = Span::ending_at(end, args.range_hours, granularity)?;
        let mut config = Config::from_common(args.common, span, now)?;
        if args.max_queries_per_account == 0 || args.max_queries_per_account > 30 {
            return Err(RunError::Usage(
                "--max-queries-per-account must be between 1 and 30 (the Logs Insights limit per account)".into(),
            ));
        }
        if args.query_timeout == 0 {
            return Err(RunError::Usage(
                "--query-timeout must be at least 1 second".into(),
            ));
        }
        config.collect.max_queries_per_account = args.max_queries_per_account;
        config.collect.poll.deadline = Duration::from_secs(args.query_timeout);
        config.out_dir = args.out_dir;
        config.plot = !args.no_plot;
        Ok(config)
    }

    fn from_common(args: CommonArgs, span: Span, now: Timestamp) -> Result<Config, RunError> {
        if args.max_workers == 0 {
            return Err(RunError::Usage("--max-workers must be at least 1".into()));
        }
        let endpoint_url = args.endpoint_url.filter(|u| !u.trim().is_empty());
        if let Some(url) = &endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(RunError::Usage(format!(
                "--endpoint-url must start with http:// or https://, got {url:?}"
            )));
        }
        Ok(Config {
            accounts: args.accounts,
            aws: AwsSettings {
                region: args.region.filter(|r| !r.trim().is_empty()),
                endpoint_url,
                max_attempts: 8,
            },
            collect: CollectOptions {
                stack_name: args.stack_name,
                output_key: args.output_key,
                span,
                max_accounts: args.max_workers,
                max_queries_per_account: 4,
                result_slots: 8,
                poll: PollPolicy::default(),
            },
            out_dir: PathBuf::from("."),
            plot: true,
            quiet: args.quiet,
            verbose: args.verbose,
            run_time: now,
        })
    }
}

fn parse_end(text: &str) -> Result<Timestamp, RunError> {
    text.parse::<Timestamp>().map_err(|e| {
        RunError::Usage(format!(
            "--end {text:?} is not an RFC 3339 time with an offset ({e})\n  e.g. --end 2026-12-02T15:00:00Z"
        ))
    })
}

/// Parses `args` and runs the command. Returns the exit code; errors are printed here.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help and version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("mvl-monitor: error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<u8, RunError> {
    let now = Timestamp::now();
    match cli.command() {
        Command::Plot(args) => plot(args),
        Command::Check(args) => {
            let span = Span::ending_at(now, 1, Granularity::from_minutes(60)?)?;
            let config = Config::from_common(args, span, now)?;
            with_runtime(config.verbose, |cancel| check(config, cancel))
        }
        Command::Collect(args) => {
            let config = Config::from_collect(args, now)?;
            with_runtime(config.verbose, |cancel| collect_command(config, cancel))
        }
    }
}

impl Cli {
    /// The command to run: a bare `mvl-monitor` is `collect` with the top-level flags.
    fn command(self) -> Command {
        self.command.unwrap_or(Command::Collect(self.collect))
    }
}

/// Sets up logging, the runtime and signal handling, then runs `body`.
fn with_runtime<F, Fut>(verbose: u8, body: F) -> Result<u8, RunError>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<u8, RunError>>,
{
    init_logging(verbose);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        tokio::spawn(cancel_on_signal(cancel.clone()));
        body(cancel).await
    })
}

/// The first SIGINT or SIGTERM cancels the run (queries are stopped, nothing is written); a second
/// one exits at once.
async fn cancel_on_signal(cancel: CancellationToken) {
    wait_for_signal().await;
    eprintln!(
        "mvl-monitor: interrupted, stopping running queries (press Ctrl-C again to exit at once)"
    );
    cancel.cancel();
    wait_for_signal().await;
    std::process::exit(i32::from(exit::CANCELLED));
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        // The SDK's own warnings (e.g. a missing ~/.aws/config) are noise for most runs.
        0 => "mvl_monitor=warn",
        1 => "mvl_monitor=debug",
        _ => "info,mvl_monitor=debug,aws_config=debug,aws_smithy_runtime=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MVL_MONITOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn load_accounts(config: &Config, console: &Console) -> Result<AccountsFile, RunError> {
    let file = AccountsFile::load(&config.accounts)?;
    console.info(&format!(
        "Loaded {} accounts from {}",
        file.accounts.len(),
        config.accounts.display()
    ));
    if let Some(warning) = permission_warning(&file) {
        console.warn(&warning);
    }
    Ok(file)
}

/// Like ssh with a private key: a file holding secrets should be readable by its owner only.
#[cfg(unix)]
pub fn permission_warning(file: &AccountsFile) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if !file.holds_secrets() {
        return None;
    }
    let mode = std::fs::metadata(&file.path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{path} holds secret keys and is readable by {who} (mode {mode:03o})\n  fix it with: chmod 600 {path}\n  better: use `profile` or `role_arn` instead of keys in the file (see README.md)",
            path = file.path.display(),
            who = if mode & 0o007 != 0 { "others" } else { "its group" },
        )
    })
}

#[cfg(not(unix))]
pub fn permission_warning(_file: &AccountsFile) -> Option<String> {
    None
}

async fn collect_command(config: Config, cancel: CancellationToken) -> Result<u8, RunError> {
    let started = Instant::now();
    let mut console = Console::new(config.quiet);
    let file = load_accounts(&config, &console)?;
    output::ensure_dir(&config.out_dir)?;
    let span = config.collect.span;
    console.info(&format!(
        "Collecting {span} UTC in {} windows of {} from {} accounts",
        span.window_count(),
        span.granularity,
        file.accounts.len()
    ));

    let base = aws::base_config(&config.aws).await;
    console.start_progress(file.accounts.len());
    let reports = collect::collect(&base, &file.accounts, &config.collect, &console, &cancel).await;
    console.finish_progress();
    if cancel.is_cancelled() {
        return Err(RunError::Cancelled);
    }

    // CSV and chart order: account, then county (bytewise), then time. Sorted in place: a run can
    // hold a million rows.
    let mut reports = reports;
    for report in &mut reports {
        if let Ok(data) = &mut report.result {
            data.rows.sort_by(|a, b| {
                a.county
                    .as_bytes()
                    .cmp(b.county.as_bytes())
                    .then(a.window.cmp(&b.window))
            });
        }
    }
    let mut sorted: Vec<(&str, &[MetricRow])> = reports
        .iter()
        .filter_map(|r| {
            r.result
                .as_ref()
                .ok()
                .map(|d| (r.account.as_str(), d.rows.as_slice()))
        })
        .collect();
    if sorted.is_empty() {
        print_summary(&console, &reports, started);
        return Err(RunError::AllAccountsFailed);
    }
    sorted.sort_by_key(|(account, _)| *account);

    let stem = output::output_stem(&config.out_dir, config.run_time);
    let csv_path = stem.with_extension("csv");
    output::write_atomically(&csv_path, Existing::Keep, |out| {
        csv_file::write_rows(
            out,
            sorted.iter().flat_map(|(account, rows)| {
                rows.iter().map(move |row| CsvRow {
                    account,
                    county: &row.county,
                    window_end: row.window.end(),
                    value: row.value,
                })
            }),
        )?;
        Ok(())
    })?;
    console.info(&format!("Results saved to {}", csv_path.display()));

    if config.plot {
        let series = to_series(&sorted);
        let png_path = stem.with_extension("png");
        let title = format!(
            "MVL completeness by account and county, {} to {} UTC ({} windows)",
            format_utc(span.start),
            format_utc(span.end),
            span.granularity
        );
        chart::write_png(&png_path, Existing::Keep, &series, &title)?;
        console.info(&format!("Visualization saved to {}", png_path.display()));
    }
    print_summary(&console, &reports, started);
    Ok(if sorted.len() == reports.len() {
        exit::OK
    } else {
        exit::SOME_ACCOUNTS_FAILED
    })
}

/// Groups each account's sorted rows into one series per county.
fn to_series(sorted: &[(&str, &[MetricRow])]) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    for &(account, rows) in sorted {
        for row in rows {
            let same = series
                .last()
                .is_some_and(|s| s.account == account && s.county.as_str() == &*row.county);
            if !same {
                series.push(Series {
                    account: account.to_string(),
                    county: row.county.to_string(),
                    points: Vec::new(),
                });
            }
            if let Some(last) = series.last_mut() {
                last.points.push((row.window.end().as_second(), row.value));
            }
        }
    }
    series
}

fn print_summary(console: &Console, reports: &[AccountReport], started: Instant) {
    let failed: Vec<&AccountReport> = reports.iter().filter(|r| r.result.is_err()).collect();
    let data: Vec<&collect::AccountData> = reports
        .iter()
        .filter_map(|r| r.result.as_ref().ok())
        .collect();
    let rows: usize = data.iter().map(|d| d.rows.len()).sum();
    let counties: std::collections::BTreeSet<&str> = data
        .iter()
        .flat_map(|d| d.rows.iter().map(|r| &*r.county))
        .collect();
    let bytes: f64 = data.iter().map(|d| d.bytes_scanned).sum();
    let queries: u32 = data.iter().map(|d| d.queries).sum();
    let skipped: usize = data.iter().map(|d| d.skipped_rows).sum();
    let above_one = data
        .iter()
        .flat_map(|d| d.rows.iter())
        .filter(|r| r.value > 1.0)
        .count();
    console.info(&format!(
        "\nSummary: {} accounts ok, {} failed; {rows} rows, {} counties, {} scanned in {queries} queries, {:.1} s",
        reports.len() - failed.len(),
        failed.len(),
        counties.len(),
        human_bytes(bytes),
        started.elapsed().as_secs_f64()
    ));
    for report in &failed {
        let reason = report
            .result
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        let first_line = reason.lines().next().unwrap_or_default();
        eprintln!("  failed: account {}: {first_line}", report.account);
    }
    if skipped > 0 {
        console.warn(&format!(
            "{skipped} result rows had no county or no numeric global_completeness and were left out"
        ));
    }
    if above_one > 0 {
        console.warn(&format!(
            "{above_one} averages are above 1: older Lambda versions logged a percentage (0-100), not a fraction"
        ));
    }
}

async fn check(config: Config, cancel: CancellationToken) -> Result<u8, RunError> {
    let console = Console::new(config.quiet);
    let file = load_accounts(&config, &console)?;
    let base = aws::base_config(&config.aws).await;
    let reports = collect::check(&base, &file.accounts, &config.collect, &cancel).await;
    if cancel.is_cancelled() {
        return Err(RunError::Cancelled);
    }
    let rows: Vec<[String; 4]> = reports
        .iter()
        .map(|r| {
            [
                r.account.to_string(),
                r.identity.clone().unwrap_or_else(|| "-".into()),
                r.log_group.clone().unwrap_or_else(|| "-".into()),
                match &r.result {
                    Ok(()) => "ok".to_string(),
                    Err(AccountFailure::Cancelled) => "cancelled".to_string(),
                    Err(e) => format!(
                        "FAILED: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    ),
                },
            ]
        })
        .collect();
    // The table is the command's output: printed even with -q.
    print!(
        "{}",
        table(["ACCOUNT", "IDENTITY", "LOG GROUP", "STATUS"], &rows)
    );
    let failed = reports.iter().filter(|r| r.result.is_err()).count();
    Ok(if failed == 0 {
        exit::OK
    } else {
        exit::SOME_ACCOUNTS_FAILED
    })
}

/// A plain aligned text table.
fn table(header: [&str; 4], rows: &[[String; 4]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 4]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 3 {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
    out
}

fn plot(args: PlotArgs) -> Result<u8, RunError> {
    let series = csv_file::read_series(&args.csv)?;
    let output = args
        .output
        .unwrap_or_else(|| args.csv.with_extension("png"));
    if output == args.csv {
        return Err(RunError::Usage(format!(
            "the output {} would overwrite the CSV; give -o PNG",
            output.display()
        )));
    }
    chart::write_png(&output, Existing::Replace, &series, &args.title)?;
    println!("Visualization saved to {}", output.display());
    Ok(exit::OK)
}

/// For tests: parses flags into a [`Config`] as `collect` would.
pub fn collect_config_from_args(args: &[&str], now: Timestamp) -> Result<Config, RunError> {
    let cli = Cli::try_parse_from(args).map_err(|e| RunError::Usage(e.to_string()))?;
    match cli.command() {
        Command::Collect(args) => Config::from_collect(args, now),
        _ => Err(RunError::Usage("not a collect command".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-02T15:42:10Z".parse().unwrap()
    }

    #[test]
    fn defaults_are_the_seeds() {
        let config = collect_config_from_args(&["mvl-monitor"], now()).unwrap();
        assert_eq!(config.accounts, PathBuf::from("accounts.yaml"));
        assert_eq!(config.collect.stack_name, "elephant-oracle-node");
        assert_eq!(
            config.collect.output_key,
            "WorkflowMirrorValidatorLogGroupName"
        );
        assert_eq!(config.collect.span.window_count(), 24);
        assert_eq!(
            config.collect.span.end,
            "2026-12-02T15:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(config.plot);
        assert_eq!(config.out_dir, PathBuf::from("."));
    }

    #[test]
    fn bare_flags_and_the_collect_command_agree() {
        let a = collect_config_from_args(&["mvl-monitor", "--range-hours", "48"], now()).unwrap();
        let b = collect_config_from_args(&["mvl-monitor", "collect", "--range-hours", "48"], now())
            .unwrap();
        assert_eq!(a.collect.span, b.collect.span);
        assert_eq!(a.collect.span.window_count(), 48);
    }

    #[test]
    fn end_and_granularity_shape_the_span() {
        let config = collect_config_from_args(
            &[
                "mvl-monitor",
                "--end",
                "2026-12-02T15:07:00Z",
                "--granularity-minutes",
                "15",
                "--range-hours",
                "2",
            ],
            now(),
        )
        .unwrap();
        assert_eq!(
            config.collect.span.end,
            "2026-12-02T15:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(config.collect.span.window_count(), 8);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["mvl-monitor", "--end", "yesterday"][..],
            &["mvl-monitor", "--granularity-minutes", "0"],
            &["mvl-monitor", "--range-hours", "0"],
            &["mvl-monitor", "--max-workers", "0"],
            &["mvl-monitor", "--max-queries-per-account", "31"],
            &["mvl-monitor", "--query-timeout", "0"],
            &["mvl-monitor", "--endpoint-url", "localhost:5000"],
            &["mvl-monitor", "--range-hours", "-3"],
        ] {
            let err = collect_config_from_args(args, now()).unwrap_err();
            assert_eq!(err.exit_code(), exit::USAGE, "{args:?}: {err}");
        }
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            ["A", "B", "C", "D"],
            &[["1".into(), "long value".into(), "x".into(), "ok".into()]],
        );
        assert_eq!(t, "A  B           C  D\n1  long value  x  ok\n");
    }
}
