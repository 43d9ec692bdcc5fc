//! The Logs Insights query runner: one query, from StartQuery to parsed rows.
//!
//! Logs Insights is asynchronous: StartQuery returns an id, and GetQueryResults must be polled until
//! the query ends. This module owns that protocol: the query text, polling with backoff, every status
//! the service can report, a deadline, StopQuery for anything given up on (so an abandoned query does
//! not keep counting against the account's concurrent-query quota), and turning the rows into
//! [`MetricRow`]s. Splitting a range whose result is full is the caller's job ([`crate::collect`]):
//! this module only reports that a result was full.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client as LogsClient;
use aws_sdk_cloudwatchlogs::error::SdkError;
use aws_sdk_cloudwatchlogs::operation::start_query::StartQueryError;
use aws_sdk_cloudwatchlogs::types::{QueryStatus, ResultField};
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::aws::error_message;
use crate::window::{Span, Window};

/// The most rows one Logs Insights query returns (the service's hard maximum for `limit`).
pub const MAX_QUERY_ROWS: i32 = 10_000;

/// The name of the averaged field in the query and in its results.
const VALUE_FIELD: &str = "avg_global_completeness";
const COUNTY_FIELD: &str = "county";

/// The query for one span: the seed's query, plus `bin()` so one query covers every window, plus an
/// explicit limit because the default (1,000 rows) would truncate a day of 60 counties.
pub fn query_string(span: &Span, limit: i32) -> String {
    format!(
        "fields message.county as county, message.global_completeness as completeness, message.msg as msg\n\
         | filter msg = \"mvl_completeness_metric\"\n\
         | stats avg(completeness) as {VALUE_FIELD} by county, bin({period})\n\
         | limit {limit}",
        period = span.granularity.bin_period()
    )
}

/// One county's average over one window.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRow {
    pub county: Arc<str>,
    pub window: Window,
    pub value: f64,
}

/// What a finished query gave.
#[derive(Debug, Default)]
pub struct QueryOutcome {
    pub rows: Vec<MetricRow>,
    /// Rows the service returned, including those dropped as outside the span.
    pub returned_rows: usize,
    /// True when the service returned as many rows as the limit: there may be more.
    pub full: bool,
    pub bytes_scanned: f64,
    /// Rows that had no county or no numeric value (events missing those fields).
    pub skipped_rows: usize,
}

/// How to poll and when to give up.
#[derive(Clone, Debug)]
pub struct PollPolicy {
    /// Wait before the first GetQueryResults: small queries often finish within a few hundred ms.
    pub first_poll: Duration,
    /// Each wait is the previous one times this factor...
    pub backoff: f64,
    /// ...up to this.
    pub max_interval: Duration,
    /// A query still running after this is stopped and reported as timed out.
    pub deadline: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first_poll: Duration::from_millis(100),
            // Gentle growth: a query that takes 1 s is seen done within ~0.2 s of finishing, yet a
            // 10-minute query is polled only every 2 s after the first ten seconds.
            backoff: 1.25,
            max_interval: Duration::from_secs(2),
            deadline: Duration::from_secs(15 * 60),
        }
    }
}

impl PollPolicy {
    fn next_interval(&self, current: Duration) -> Duration {
        current.mul_f64(self.backoff).min(self.max_interval)
    }
}

/// Why a query gave no rows. The messages start with the seed's wording where it had one.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(
        "Failed to start query on log group {log_group}: the log group does not exist ({detail})"
    )]
    LogGroupNotFound { log_group: String, detail: String },
    #[error("Failed to start query on log group {log_group}: {detail}")]
    Start { log_group: String, detail: String },
    #[error("Failed to get query results for query {query_id}: {detail}")]
    Poll { query_id: String, detail: String },
    #[error("query {query_id} ended with status {status}")]
    Ended { query_id: String, status: String },
    #[error(
        "query {query_id} was still running after {seconds} s; it was stopped (raise --query-timeout)"
    )]
    Deadline { query_id: String, seconds: u64 },
    #[error("query {query_id} returned a row that cannot be read: {detail}")]
    BadRow { query_id: String, detail: String },
    #[error("cancelled")]
    Cancelled,
}

/// Shared limits that the caller owns: at most so many GetQueryResults responses in flight at once,
/// since each complete one can hold 10,000 rows (several MB while parsed).
#[derive(Clone)]
pub struct ResultSlots(pub Arc<Semaphore>);

/// Runs one query over `span` on `log_group` and returns its rows. On cancellation or deadline the
/// query is stopped on the service before returning.
pub async fn run_query(
    client: &LogsClient,
    log_group: &str,
    span: &Span,
    policy: &PollPolicy,
    slots: &ResultSlots,
    cancel: &CancellationToken,
) -> Result<QueryOutcome, QueryError> {
    let limit = MAX_QUERY_ROWS;
    let start = client
        .start_query()
        .log_group_name(log_group)
        .start_time(span.start.as_second())
        // endTime is inclusive at whole seconds; events in the second at `end` land in the bin that
        // starts at `end`, which `Span::window_at` drops.
        .end_time(span.end.as_second())
        .query_string(query_string(span, limit))
        .limit(limit)
        .send();
    if cancel.is_cancelled() {
        return Err(QueryError::Cancelled);
    }
    // Not raced against cancellation: once sent, the service may start the query, and only a known
    // id can be stopped. The SDK's attempt timeout bounds the wait.
    let query_id = match start.await {
        Ok(output) => output.query_id.unwrap_or_default(),
        Err(err) => return Err(start_error(log_group, err)),
    };
    if query_id.is_empty() {
        return Err(QueryError::Start {
            log_group: log_group.to_string(),
            detail: "the service returned no query id".into(),
        });
    }
    tracing::debug!(%query_id, %log_group, %span, "query started");
    if cancel.is_cancelled() {
        stop_query(client, &query_id).await;
        return Err(QueryError::Cancelled);
    }

    let result = tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(QueryError::Cancelled),
        _ = tokio::time::sleep(policy.deadline) => Err(QueryError::Deadline {
            query_id: query_id.clone(),
            seconds: policy.deadline.as_secs(),
        }),
        outcome = poll_until_done(client, &query_id, span, limit, policy, slots) => outcome,
    };
    if matches!(
        result,
        Err(QueryError::Cancelled | QueryError::Deadline { .. })
    ) {
        stop_query(client, &query_id).await;
    }
    result
}

async fn poll_until_done(
    client: &LogsClient,
    query_id: &str,
    span: &Span,
    limit: i32,
    policy: &PollPolicy,
    slots: &ResultSlots,
) -> Result<QueryOutcome, QueryError> {
    let mut wait = policy.first_poll;
    loop {
        tokio::time::sleep(wait).await;
        wait = policy.next_interval(wait);
        let response = {
            // The semaphore is never closed; if it were, polling without a slot is still correct.
            let _slot = slots.0.acquire().await.ok();
            client.get_query_results().query_id(query_id).send().await
        };
        let output = response.map_err(|err| QueryError::Poll {
            query_id: query_id.to_string(),
            detail: error_message(&err),
        })?;
        match output.status() {
            Some(QueryStatus::Complete) => {
                let bytes_scanned = output
                    .statistics()
                    .map(|s| s.bytes_scanned())
                    .unwrap_or(0.0);
                let mut outcome =
                    parse_results(output.results(), span).map_err(|detail| QueryError::BadRow {
                        query_id: query_id.to_string(),
                        detail,
                    })?;
                outcome.full = outcome.returned_rows >= limit as usize;
                outcome.bytes_scanned = bytes_scanned;
                return Ok(outcome);
            }
            // A Running result may already hold partial rows; only a Complete one is read.
            Some(QueryStatus::Scheduled | QueryStatus::Running) | None => continue,
            Some(other) => {
                return Err(QueryError::Ended {
                    query_id: query_id.to_string(),
                    status: other.as_str().to_string(),
                });
            }
        }
    }
}

/// Best effort: the query is abandoned either way, and a failure here must not hide the real error.
async fn stop_query(client: &LogsClient, query_id: &str) {
    let stop = client.stop_query().query_id(query_id).send();
    match tokio::time::timeout(Duration::from_secs(5), stop).await {
        Ok(Ok(_)) => tracing::debug!(%query_id, "query stopped"),
        Ok(Err(err)) => tracing::warn!(%query_id, error = %error_message(&err), "StopQuery failed"),
        Err(_) => tracing::warn!(%query_id, "StopQuery timed out"),
    }
}

fn start_error<R>(log_group: &str, err: SdkError<StartQueryError, R>) -> QueryError
where
    R: std::fmt::Debug + 'static,
{
    if let SdkError::ServiceError(service) = &err
        && let StartQueryError::ResourceNotFoundException(e) = service.err()
    {
        return QueryError::LogGroupNotFound {
            log_group: log_group.to_string(),
            detail: e
                .message()
                .unwrap_or("ResourceNotFoundException")
                .to_string(),
        };
    }
    QueryError::Start {
        log_group: log_group.to_string(),
        detail: error_message(&err),
    }
}

/// Reads the result rows of a Complete query. Every value is a string; the bin field is named after
/// its expression (`bin(1h)`) and holds the bin's start in UTC as `YYYY-MM-DD HH:MM:SS.mmm`.
pub fn parse_results(results: &[Vec<ResultField>], span: &Span) -> Result<QueryOutcome, String> {
    let mut outcome = QueryOutcome {
        returned_rows: results.len(),
        ..QueryOutcome::default()
    };
    // County names repeat in every window: share one allocation per name.
    let mut counties: HashSet<Arc<str>> = HashSet::new();
    for row in results {
        let mut county = None;
        let mut bin = None;
        let mut value = None;
        for field in row {
            match (field.field(), field.value()) {
                (Some(COUNTY_FIELD), v) => county = v,
                (Some(VALUE_FIELD), v) => value = v,
                (Some(name), v) if name.starts_with("bin(") => bin = v,
                _ => {}
            }
        }
        let Some(bin) = bin else {
            return Err(format!("no bin() field in {row:?}"));
        };
        let bin_start = parse_bin(bin)?;
        let Some(window) = span.window_at(bin_start) else {
            continue;
        };
        let (Some(county), Some(value)) =
            (county, value.and_then(|v| v.trim().parse::<f64>().ok()))
        else {
            outcome.skipped_rows += 1;
            continue;
        };
        if !value.is_finite() {
            outcome.skipped_rows += 1;
            continue;
        }
        let county = match counties.get(county) {
            Some(shared) => shared.clone(),
            None => {
                let shared: Arc<str> = Arc::from(county);
                counties.insert(shared.clone());
                shared
            }
        };
        outcome.rows.push(MetricRow {
            county,
            window,
            value,
        });
    }
    Ok(outcome)
}

/// `2026-12-02 14:00:00.000` (UTC) to a timestamp.
pub fn parse_bin(text: &str) -> Result<Timestamp, String> {
    let civil: DateTime = text
        .trim()
        .parse()
        .map_err(|e| format!("bin value {text:?} is not a time: {e}"))?;
    TimeZone::UTC
        .to_timestamp(civil)
        .map_err(|e| format!("bin value {text:?} is out of range: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Granularity;

    fn span(end: &str, hours: u32, minutes: u32) -> Span {
        Span::ending_at(
            end.parse().unwrap(),
            hours,
            Granularity::from_minutes(minutes).unwrap(),
        )
        .unwrap()
    }

    fn row(fields: &[(&str, &str)]) -> Vec<ResultField> {
        fields
            .iter()
            .map(|(f, v)| ResultField::builder().field(*f).value(*v).build())
            .collect()
    }

    #[test]
    fn query_text_is_the_seed_query_binned_and_limited() {
        let q = query_string(&span("2026-12-02T16:00:00Z", 24, 60), 10_000);
        assert_eq!(
            q,
            "fields message.county as county, message.global_completeness as completeness, message.msg as msg\n\
             | filter msg = \"mvl_completeness_metric\"\n\
             | stats avg(completeness) as avg_global_completeness by county, bin(1h)\n\
             | limit 10000"
        );
        assert!(query_string(&span("2026-12-02T16:00:00Z", 24, 15), 5).contains("bin(15m)"));
        assert!(query_string(&span("2026-12-02T00:00:00Z", 48, 1440), 5).contains("bin(1d)"));
    }

    #[test]
    fn parses_bins_as_utc() {
        assert_eq!(
            parse_bin("2026-12-02 14:00:00.000").unwrap(),
            "2026-12-02T14:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(parse_bin("yesterday").unwrap_err().contains("not a time"));
    }

    #[test]
    fn rows_map_to_windows_and_the_end_bin_is_dropped() {
        let span = span("2026-12-02T16:00:00Z", 2, 60);
        let results = vec![
            row(&[
                ("county", "Palm Beach"),
                ("bin(1h)", "2026-12-02 14:00:00.000"),
                ("avg_global_completeness", "0.9312"),
            ]),
            row(&[
                ("county", "Palm Beach"),
                ("bin(1h)", "2026-12-02 15:00:00.000"),
                ("avg_global_completeness", "0.5"),
            ]),
            // From the inclusive last second of the query: belongs to the next window.
            row(&[
                ("county", "Palm Beach"),
                ("bin(1h)", "2026-12-02 16:00:00.000"),
                ("avg_global_completeness", "0.1"),
            ]),
        ];
        let outcome = parse_results(&results, &span).unwrap();
        assert_eq!(outcome.returned_rows, 3);
        assert_eq!(outcome.rows.len(), 2);
        assert_eq!(&*outcome.rows[0].county, "Palm Beach");
        assert_eq!(
            outcome.rows[0].window.end(),
            "2026-12-02T15:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(outcome.rows[0].value, 0.9312);
        assert_eq!(
            outcome.rows[1].window.end(),
            "2026-12-02T16:00:00Z".parse::<Timestamp>().unwrap()
        );
        // The two rows share one allocation for the county name.
        assert!(Arc::ptr_eq(
            &outcome.rows[0].county,
            &outcome.rows[1].county
        ));
    }

    #[test]
    fn rows_without_county_or_number_are_counted_not_invented() {
        let span = span("2026-12-02T16:00:00Z", 2, 60);
        let results = vec![
            row(&[
                ("bin(1h)", "2026-12-02 14:00:00.000"),
                ("avg_global_completeness", "0.9"),
            ]),
            row(&[("county", "X"), ("bin(1h)", "2026-12-02 14:00:00.000")]),
            row(&[
                ("county", "X"),
                ("bin(1h)", "2026-12-02 14:00:00.000"),
                ("avg_global_completeness", "n/a"),
            ]),
            row(&[
                ("county", "X"),
                ("bin(1h)", "2026-12-02 14:00:00.000"),
                ("avg_global_completeness", "NaN"),
            ]),
        ];
        let outcome = parse_results(&results, &span).unwrap();
        assert!(outcome.rows.is_empty());
        assert_eq!(outcome.skipped_rows, 4);
    }

    #[test]
    fn a_row_without_bin_or_with_a_bad_bin_is_an_error() {
        let span = span("2026-12-02T16:00:00Z", 2, 60);
        let err = parse_results(
            &[row(&[("county", "X"), ("avg_global_completeness", "0.9")])],
            &span,
        )
        .unwrap_err();
        assert!(err.contains("no bin() field"), "{err}");
        let err = parse_results(
            &[row(&[
                ("county", "X"),
                ("bin(1h)", "14:00"),
                ("avg_global_completeness", "0.9"),
            ])],
            &span,
        )
        .unwrap_err();
        assert!(err.contains("not a time"), "{err}");
    }

    #[test]
    fn backoff_grows_to_the_cap() {
        let policy = PollPolicy::default();
        let mut wait = policy.first_poll;
        let mut waits = vec![];
        for _ in 0..20 {
            waits.push(wait);
            wait = policy.next_interval(wait);
        }
        assert_eq!(waits[0], Duration::from_millis(100));
        assert_eq!(waits[1], Duration::from_millis(125));
        assert_eq!(*waits.last().unwrap(), Duration::from_secs(2));
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
    }
}
