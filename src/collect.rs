//! Collection across accounts: the one place that owns concurrency.
//!
//! Every account runs at once (up to `max_accounts`), each through the same stages: credentials and
//! identity, stack discovery, then one Logs Insights query over the whole span, split only when a
//! result comes back full. A failing account is reported with its reason and never costs the others.
//! The limits that keep the service and our memory in bounds live here too: queries running at once
//! per account, and GetQueryResults responses being parsed at once across all accounts.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use aws_config::SdkConfig;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::accounts::{Account, AccountId};
use crate::aws::{self, AccountClients, IdentityError};
use crate::insights::{
    self, MAX_QUERY_ROWS, MetricRow, PollPolicy, QueryError, QueryOutcome, ResultSlots,
};
use crate::stack::{self, StackError};
use crate::window::Span;

/// What to collect and how hard to push.
#[derive(Clone, Debug)]
pub struct CollectOptions {
    pub stack_name: String,
    pub output_key: String,
    pub span: Span,
    /// Accounts processed at once.
    pub max_accounts: usize,
    /// Logs Insights queries running at once in one account (the service allows 30 per account,
    /// shared with every other user of that account).
    pub max_queries_per_account: usize,
    /// Complete GetQueryResults responses being read at once, across all accounts.
    pub result_slots: usize,
    pub poll: PollPolicy,
}

/// The rows of one account.
#[derive(Debug, Default)]
pub struct AccountData {
    pub rows: Vec<MetricRow>,
    pub bytes_scanned: f64,
    /// Queries that ran to completion, including full ones that were split.
    pub queries: u32,
    /// Result rows without a county or a numeric value.
    pub skipped_rows: usize,
}

/// Why an account gave no rows.
#[derive(Debug, thiserror::Error)]
pub enum AccountFailure {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(
        "more than {MAX_QUERY_ROWS} counties in the single window {window}: the result would be truncated\n  use a smaller --granularity-minutes"
    )]
    TooManyCounties { window: String },
    #[error("cancelled")]
    Cancelled,
}

/// What happened in one account: its rows for `collect`, nothing more for `check`.
#[derive(Debug)]
pub struct AccountReport<T = AccountData> {
    pub account: AccountId,
    /// The caller ARN that STS confirmed.
    pub identity: Option<String>,
    pub log_group: Option<String>,
    pub result: Result<T, AccountFailure>,
}

impl<T> AccountReport<T> {
    /// A report that nothing has happened to yet; left as is, it reads as cancelled.
    fn new(account: &Account) -> AccountReport<T> {
        AccountReport {
            account: account.id.clone(),
            identity: None,
            log_group: None,
            result: Err(AccountFailure::Cancelled),
        }
    }
}

/// Hooks for the console; called from the collecting tasks as things happen.
pub trait Observer: Sync {
    fn log_group(&self, account: &AccountId, log_group: &str);
    fn finished(&self, report: &AccountReport);
}

/// Collects every account. Reports come back in the order of `accounts`.
pub async fn collect(
    base: &SdkConfig,
    accounts: &[Account],
    options: &CollectOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Vec<AccountReport> {
    collect_with(accounts, options, observer, cancel, |account| {
        aws::account_clients(base, account)
    })
    .await
}

/// [`collect`] with the clients of each account made by `clients_for`: the seam where tests put
/// mocked clients.
pub async fn collect_with<'a, F, Fut>(
    accounts: &'a [Account],
    options: &CollectOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
    clients_for: F,
) -> Vec<AccountReport>
where
    F: Fn(&'a Account) -> Fut,
    Fut: Future<Output = AccountClients>,
{
    let slots = ResultSlots(Arc::new(Semaphore::new(options.result_slots.max(1))));
    let clients_for = &clients_for;
    let mut reports: Vec<(usize, AccountReport)> =
        futures::stream::iter(accounts.iter().enumerate())
            .map(|(index, account)| {
                let slots = slots.clone();
                async move {
                    let report = collect_account(
                        account,
                        options,
                        &slots,
                        observer,
                        cancel,
                        clients_for(account),
                    )
                    .await;
                    observer.finished(&report);
                    (index, report)
                }
            })
            .buffer_unordered(options.max_accounts.max(1))
            .collect()
            .await;
    reports.sort_by_key(|(index, _)| *index);
    reports.into_iter().map(|(_, report)| report).collect()
}

async fn collect_account(
    account: &Account,
    options: &CollectOptions,
    slots: &ResultSlots,
    observer: &dyn Observer,
    cancel: &CancellationToken,
    clients: impl Future<Output = AccountClients>,
) -> AccountReport {
    let mut report = AccountReport::new(account);
    let located = cancel
        .run_until_cancelled(locate(clients, account, options, &mut report))
        .await;
    let clients = match located {
        None => return report,
        Some(Err(failure)) => {
            report.result = Err(failure);
            return report;
        }
        Some(Ok(clients)) => clients,
    };
    let log_group = report.log_group.clone().unwrap_or_default();
    observer.log_group(&account.id, &log_group);
    report.result = query_whole_span(&clients, &log_group, options, slots, cancel).await;
    report
}

/// Identity and log group. The stack is read while the identity is checked (a read-only call, and
/// one round trip less per account); its answer is used only once the identity is confirmed, and no
/// query is started before. Fills `report` as it learns things, so a failure still shows them.
async fn locate<T>(
    clients: impl Future<Output = AccountClients>,
    account: &Account,
    options: &CollectOptions,
    report: &mut AccountReport<T>,
) -> Result<AccountClients, AccountFailure> {
    let clients = clients.await;
    let identity = aws::verify_identity(&clients.sts, &account.id, &account.credentials);
    let log_group = async {
        match &account.log_group {
            Some(group) => Ok(group.clone()),
            None => {
                let stack_name = account.stack_name.as_deref().unwrap_or(&options.stack_name);
                stack::log_group_from_stack(
                    &clients.cloudformation,
                    stack_name,
                    &options.output_key,
                    &clients.region,
                )
                .await
            }
        }
    };
    let (identity, log_group) = futures::join!(identity, log_group);
    report.identity = Some(identity?);
    report.log_group = Some(log_group?);
    Ok(clients)
}

/// Runs one query over the whole span; a full result is split into smaller spans until every row is
/// in. At most `max_queries_per_account` run at once. On any failure the other queries of the
/// account are stopped before returning.
async fn query_whole_span(
    clients: &AccountClients,
    log_group: &str,
    options: &CollectOptions,
    slots: &ResultSlots,
    cancel: &CancellationToken,
) -> Result<AccountData, AccountFailure> {
    let account_cancel = cancel.child_token();
    let mut pending = VecDeque::from([options.span]);
    let mut running = FuturesUnordered::new();
    let mut data = AccountData::default();
    let mut failure = None;
    loop {
        while failure.is_none() && running.len() < options.max_queries_per_account.max(1) {
            let Some(span) = pending.pop_front() else {
                break;
            };
            let account_cancel = &account_cancel;
            running.push(async move {
                let outcome = insights::run_query(
                    &clients.logs,
                    log_group,
                    &span,
                    &options.poll,
                    slots,
                    account_cancel,
                )
                .await;
                (span, outcome)
            });
        }
        let Some((span, outcome)) = running.next().await else {
            break;
        };
        match outcome {
            Ok(outcome) => {
                data.queries += 1;
                data.bytes_scanned += outcome.bytes_scanned;
                if outcome.full {
                    if span.window_count() <= 1 {
                        failure.get_or_insert(AccountFailure::TooManyCounties {
                            window: span.to_string(),
                        });
                        account_cancel.cancel();
                        continue;
                    }
                    tracing::debug!(%span, rows = outcome.returned_rows, "result full, splitting");
                    pending.extend(span.split(parts_for_full_result(&span, &outcome)));
                } else {
                    data.skipped_rows += outcome.skipped_rows;
                    data.rows.extend(outcome.rows);
                }
            }
            Err(QueryError::Cancelled) if cancel.is_cancelled() => {
                failure.get_or_insert(AccountFailure::Cancelled);
            }
            // The account's own token: another query failed first and this one was stopped.
            Err(QueryError::Cancelled) => {}
            Err(err) => {
                failure.get_or_insert(AccountFailure::Query(err));
                account_cancel.cancel();
            }
        }
    }
    match failure {
        Some(failure) => Err(failure),
        None if cancel.is_cancelled() => Err(AccountFailure::Cancelled),
        None => Ok(data),
    }
}

/// How many parts a span whose result was full should be split into. The truncated result still tells
/// how many counties one window holds (the largest number of rows seen in a single window), so the
/// span is cut into parts that each fit with a 5% margin (counties can come and go over time) instead of halving blindly. A part that
/// still comes back full is split again, so a low estimate costs a query, never a row.
pub fn parts_for_full_result(span: &Span, outcome: &QueryOutcome) -> u64 {
    let mut per_window: HashMap<jiff::Timestamp, u64> = HashMap::new();
    for row in &outcome.rows {
        *per_window.entry(row.window.start()).or_default() += 1;
    }
    let counties = per_window.values().copied().max().unwrap_or(1).max(1);
    let budget = (u64::try_from(MAX_QUERY_ROWS).unwrap_or(10_000) * 19 / 20).max(1);
    let windows_per_part = (budget / counties).max(1);
    span.window_count().div_ceil(windows_per_part).max(2)
}

/// Verifies every account without querying: identity, stack and output, log group.
pub async fn check(
    base: &SdkConfig,
    accounts: &[Account],
    options: &CollectOptions,
    cancel: &CancellationToken,
) -> Vec<AccountReport<()>> {
    futures::stream::iter(accounts)
        .map(|account| async move {
            let mut report = AccountReport::new(account);
            let checked = cancel
                .run_until_cancelled(async {
                    let clients = aws::account_clients(base, account);
                    let clients = locate(clients, account, options, &mut report).await?;
                    let group = report.log_group.clone().unwrap_or_default();
                    stack::log_group_exists(&clients.logs, &group).await?;
                    Ok::<(), AccountFailure>(())
                })
                .await
                .unwrap_or(Err(AccountFailure::Cancelled));
            report.result = checked;
            report
        })
        .buffered(options.max_accounts.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::{Granularity, Window};

    fn span(hours: u32) -> Span {
        Span::ending_at(
            "2026-12-02T00:00:00Z".parse().unwrap(),
            hours,
            Granularity::from_minutes(60).unwrap(),
        )
        .unwrap()
    }

    fn truncated(span: &Span, counties: usize, rows: usize) -> QueryOutcome {
        let mut out = QueryOutcome::default();
        let names: Vec<Arc<str>> = (0..counties).map(|c| Arc::from(format!("c{c}"))).collect();
        let mut start = span.start;
        while out.rows.len() < rows {
            let end = start + jiff::SignedDuration::from_hours(1);
            for name in &names {
                if out.rows.len() == rows {
                    break;
                }
                out.rows.push(MetricRow {
                    county: name.clone(),
                    window: Window::new(start, Granularity::from_minutes(60).unwrap()),
                    value: 0.9,
                });
            }
            start = end;
        }
        out.returned_rows = rows;
        out.full = true;
        out
    }

    #[test]
    fn twelve_days_of_sixty_counties_split_in_two() {
        // 288 windows x 60 counties = 17,280 rows: two parts of 144 windows (8,640 rows) each fit.
        let span = span(288);
        assert_eq!(
            parts_for_full_result(&span, &truncated(&span, 60, 10_000)),
            2
        );
        let parts = span.split(2);
        assert!(parts.iter().all(|p| p.window_count() * 60 <= 10_000));
    }

    #[test]
    fn a_full_result_is_always_split_at_least_in_two() {
        let span = span(24);
        assert_eq!(parts_for_full_result(&span, &truncated(&span, 1, 24)), 2);
        assert_eq!(parts_for_full_result(&span, &QueryOutcome::default()), 2);
    }
}
