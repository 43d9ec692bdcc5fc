//! Offline orchestration tests: the real `collect_with` / `run_query` code driven against mocked AWS
//! clients (aws-smithy-mocks), so that polling, every query status, retries on throttling, splitting of
//! full results, deadlines, cancellation and per-account failures are checked without any network
//! traffic and in milliseconds. The end-to-end tests cover real HTTP against the test bed; these cover
//! the protocol corners a test bed cannot easily produce on demand.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
use aws_sdk_cloudformation::types::{Output as StackOutput, Stack, StackStatus};
use aws_sdk_cloudwatchlogs::Client as Logs;
use aws_sdk_cloudwatchlogs::config::http::HttpResponse;
use aws_sdk_cloudwatchlogs::operation::get_query_results::GetQueryResultsOutput;
use aws_sdk_cloudwatchlogs::operation::start_query::StartQueryOutput;
use aws_sdk_cloudwatchlogs::operation::stop_query::StopQueryOutput;
use aws_sdk_cloudwatchlogs::types::{QueryStatistics, QueryStatus, ResultField};
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use jiff::Timestamp;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use mvl_monitor::accounts::{self, Account, AccountId};
use mvl_monitor::aws::{AccountClients, IdentityError};
use mvl_monitor::collect::{AccountFailure, AccountReport, CollectOptions, Observer, collect_with};
use mvl_monitor::insights::{self, MAX_QUERY_ROWS, PollPolicy, QueryError, ResultSlots};
use mvl_monitor::stack::StackError;
use mvl_monitor::window::{Granularity, Span};

const ACCOUNT_A: &str = "111111111111";
const ACCOUNT_B: &str = "222222222222";
const LOG_GROUP: &str = "/aws/lambda/mvl-validator";
const STACK: &str = "elephant-oracle-node";
const OUTPUT_KEY: &str = "WorkflowMirrorValidatorLogGroupName";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn hourly_span(end: &str, hours: u32) -> Span {
    Span::ending_at(ts(end), hours, Granularity::from_minutes(60).unwrap()).unwrap()
}

fn fast_poll(deadline: Duration) -> PollPolicy {
    PollPolicy {
        first_poll: Duration::from_millis(1),
        backoff: 1.5,
        max_interval: Duration::from_millis(5),
        deadline,
    }
}

fn options(span: Span) -> CollectOptions {
    CollectOptions {
        stack_name: STACK.into(),
        output_key: OUTPUT_KEY.into(),
        span,
        max_accounts: 8,
        max_queries_per_account: 4,
        result_slots: 2,
        poll: fast_poll(Duration::from_secs(2)),
    }
}

/// The retry settings of `aws::base_config` (standard mode, 8 attempts), with a 1 ms initial backoff
/// so that tests stay fast. Copied rather than taken from `base_config`, which loads the environment
/// and the default credentials chain (a possible network call to the instance metadata service).
fn production_retry() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(20))
}

/// One account's mocked services. Every rule is kept so that call counts can be asserted.
struct Mocks {
    identity: Rule,
    describe_stacks: Rule,
    logs: Vec<Rule>,
}

impl Mocks {
    fn new(identity: Rule, describe_stacks: Rule, logs: Vec<Rule>) -> Mocks {
        Mocks {
            identity,
            describe_stacks,
            logs,
        }
    }

    fn clients(&self) -> AccountClients {
        let logs: Vec<&Rule> = self.logs.iter().collect();
        AccountClients {
            logs: mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, logs, |c| c
                .retry_config(production_retry())),
            cloudformation: mock_client!(
                aws_sdk_cloudformation,
                RuleMode::MatchAny,
                [&self.describe_stacks],
                |c| c.retry_config(production_retry())
            ),
            sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&self.identity], |c| c
                .retry_config(production_retry())),
            region: "us-east-1".into(),
        }
    }
}

fn logs_client(rules: &[&Rule]) -> Logs {
    mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, rules, |c| c
        .retry_config(production_retry()))
}

fn identity(account: &str) -> Rule {
    let account = account.to_string();
    mock!(aws_sdk_sts::Client::get_caller_identity).then_output(move || {
        GetCallerIdentityOutput::builder()
            .account(account.clone())
            .arn(format!("arn:aws:iam::{account}:user/mvl-monitor"))
            .user_id("AIDAEXAMPLE")
            .build()
    })
}

fn stack_with_outputs(
    stack: &'static str,
    outputs: &'static [(&'static str, &'static str)],
) -> Rule {
    mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .match_requests(move |r| r.stack_name() == Some(stack))
        .then_output(move || {
            let mut found = Stack::builder()
                .stack_name(stack)
                .stack_status(StackStatus::CreateComplete);
            for (key, value) in outputs {
                found = found.outputs(
                    StackOutput::builder()
                        .output_key(*key)
                        .output_value(*value)
                        .build(),
                );
            }
            DescribeStacksOutput::builder()
                .stacks(found.build())
                .build()
        })
}

/// A DescribeStacks rule for accounts whose log group is preset: it must never be called.
fn no_stack() -> Rule {
    stack_with_outputs(STACK, &[(OUTPUT_KEY, "/aws/lambda/from-the-stack")])
}

fn start_ok(query_id: &str) -> Rule {
    let query_id = query_id.to_string();
    mock!(Logs::start_query).then_output(move || {
        StartQueryOutput::builder()
            .query_id(query_id.clone())
            .build()
    })
}

fn stop_ok() -> Rule {
    mock!(Logs::stop_query).then_output(|| StopQueryOutput::builder().success(true).build())
}

fn stop_ok_for(query_id: &'static str) -> Rule {
    mock!(Logs::stop_query)
        .match_requests(move |r| r.query_id() == Some(query_id))
        .then_output(|| StopQueryOutput::builder().success(true).build())
}

fn field(name: &str, value: &str) -> ResultField {
    ResultField::builder().field(name).value(value).build()
}

/// A result row as Logs Insights returns it for the binned query.
fn row(county: &str, bin_start: Timestamp, value: &str) -> Vec<ResultField> {
    vec![
        field("county", county),
        field(
            "bin(1h)",
            &bin_start.strftime("%Y-%m-%d %H:%M:%S.000").to_string(),
        ),
        field("avg_global_completeness", value),
    ]
}

fn results(
    status: QueryStatus,
    rows: Vec<Vec<ResultField>>,
    bytes_scanned: f64,
) -> GetQueryResultsOutput {
    GetQueryResultsOutput::builder()
        .status(status)
        .set_results(Some(rows))
        .statistics(
            QueryStatistics::builder()
                .bytes_scanned(bytes_scanned)
                .build(),
        )
        .build()
}

fn http(status: u16, body: impl Into<String>) -> HttpResponse {
    HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body.into()))
}

/// A JSON-protocol (CloudWatch Logs) error response.
fn logs_error(code: &str, message: &str) -> String {
    format!(r#"{{"__type":"{code}","message":"{message}"}}"#)
}

fn accounts(yaml: &str) -> Vec<Account> {
    accounts::parse(yaml, Path::new("accounts.yaml")).unwrap()
}

fn one_account_with_log_group() -> Vec<Account> {
    accounts(&format!(
        "- Account ID: '{ACCOUNT_A}'\n  log_group: {LOG_GROUP}\n"
    ))
}

/// Records what the console would have been told.
#[derive(Default)]
struct Recorder {
    log_groups: Mutex<Vec<(String, String)>>,
    finished: Mutex<Vec<String>>,
}

impl Observer for Recorder {
    fn log_group(&self, account: &AccountId, log_group: &str) {
        self.log_groups
            .lock()
            .unwrap()
            .push((account.to_string(), log_group.to_string()));
    }

    fn finished(&self, report: &AccountReport) {
        self.finished
            .lock()
            .unwrap()
            .push(report.account.to_string());
    }
}

/// Runs `collect_with` with the clients of `mocks[i]` for `accounts[i]`.
async fn collect(
    accounts: &[Account],
    options: &CollectOptions,
    cancel: &CancellationToken,
    mocks: &[&Mocks],
) -> (Vec<AccountReport>, Recorder) {
    assert_eq!(accounts.len(), mocks.len());
    let clients: HashMap<String, AccountClients> = accounts
        .iter()
        .zip(mocks)
        .map(|(a, m)| (a.id.to_string(), m.clients()))
        .collect();
    let recorder = Recorder::default();
    let reports = collect_with(accounts, options, &recorder, cancel, |account| {
        std::future::ready(clients[account.id.as_str()].clone())
    })
    .await;
    (reports, recorder)
}

fn failure(report: &AccountReport) -> &AccountFailure {
    match &report.result {
        Ok(data) => panic!(
            "account {} should have failed, got {} rows",
            report.account,
            data.rows.len()
        ),
        Err(failure) => failure,
    }
}

/// (county, window end as RFC 3339, value): easy to compare.
fn plain_rows(report: &AccountReport) -> Vec<(String, String, f64)> {
    let data = match &report.result {
        Ok(data) => data,
        Err(err) => panic!("account {} failed: {err}", report.account),
    };
    data.rows
        .iter()
        .map(|r| (r.county.to_string(), r.window.end().to_string(), r.value))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Every GetQueryResults status
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn scheduled_then_running_then_complete_reads_only_the_complete_rows() {
    let span = hourly_span("2026-12-02T16:00:00Z", 2);
    let (start_s, end_s) = (span.start.as_second(), span.end.as_second());
    let start = mock!(Logs::start_query)
        .match_requests(move |r| {
            r.log_group_name() == Some(LOG_GROUP)
                && r.start_time() == Some(start_s)
                && r.end_time() == Some(end_s)
                && r.limit() == Some(MAX_QUERY_ROWS)
                && r.query_string().is_some_and(|q| q.contains("bin(1h)"))
        })
        .then_output(|| StartQueryOutput::builder().query_id("q-1").build());
    let get = mock!(Logs::get_query_results)
        .match_requests(|r| r.query_id() == Some("q-1"))
        .sequence()
        .output(|| results(QueryStatus::Scheduled, vec![], 0.0))
        // A Running response already holds partial rows with partial averages: never to be read.
        .output(|| {
            results(
                QueryStatus::Running,
                vec![
                    row("Palm Beach", ts("2026-12-02T14:00:00Z"), "0.1"),
                    row("Partial County", ts("2026-12-02T15:00:00Z"), "0.2"),
                ],
                10.0,
            )
        })
        .output(|| {
            results(
                QueryStatus::Complete,
                vec![
                    row("Palm Beach", ts("2026-12-02T14:00:00Z"), "0.9312"),
                    row("Palm Beach", ts("2026-12-02T15:00:00Z"), "0.5"),
                    row("Broward", ts("2026-12-02T15:00:00Z"), "1"),
                ],
                4096.0,
            )
        })
        .build();
    let stop = stop_ok();
    let mocks = Mocks::new(
        identity(ACCOUNT_A),
        no_stack(),
        vec![start.clone(), get.clone(), stop.clone()],
    );

    let accounts = one_account_with_log_group();
    let (reports, recorder) = collect(
        &accounts,
        &options(span),
        &CancellationToken::new(),
        &[&mocks],
    )
    .await;

    assert_eq!(reports.len(), 1);
    assert_eq!(
        plain_rows(&reports[0]),
        vec![
            ("Palm Beach".into(), "2026-12-02T15:00:00Z".into(), 0.9312),
            ("Palm Beach".into(), "2026-12-02T16:00:00Z".into(), 0.5),
            ("Broward".into(), "2026-12-02T16:00:00Z".into(), 1.0),
        ]
    );
    let data = reports[0].result.as_ref().unwrap();
    assert_eq!(data.bytes_scanned, 4096.0);
    assert_eq!(data.queries, 1);
    assert_eq!(data.skipped_rows, 0);
    assert_eq!(
        reports[0].identity.as_deref(),
        Some("arn:aws:iam::111111111111:user/mvl-monitor")
    );
    assert_eq!(reports[0].log_group.as_deref(), Some(LOG_GROUP));
    assert_eq!(start.num_calls(), 1);
    assert_eq!(get.num_calls(), 3, "Scheduled, Running, Complete");
    assert_eq!(stop.num_calls(), 0, "a completed query is not stopped");
    assert_eq!(mocks.identity.num_calls(), 1);
    assert_eq!(mocks.describe_stacks.num_calls(), 0, "log_group is preset");
    assert_eq!(
        *recorder.log_groups.lock().unwrap(),
        vec![(ACCOUNT_A.to_string(), LOG_GROUP.to_string())]
    );
    assert_eq!(
        *recorder.finished.lock().unwrap(),
        vec![ACCOUNT_A.to_string()]
    );
}

#[tokio::test]
async fn every_terminal_status_other_than_complete_fails_the_account() {
    let span = hourly_span("2026-12-02T16:00:00Z", 2);
    // "Unknown" is a status the service documents; "Exploded" stands for one added in the future
    // (the SDK's unknown-variant path). Served as raw JSON so the SDK's deserializer maps them.
    for status in ["Failed", "Cancelled", "Timeout", "Unknown", "Exploded"] {
        let query_id = format!("q-{status}");
        let running = r#"{"status":"Running","results":[[{"field":"county","value":"X"},{"field":"bin(1h)","value":"2026-12-02 14:00:00.000"},{"field":"avg_global_completeness","value":"0.5"}]]}"#;
        let ended = format!(r#"{{"status":"{status}","results":[]}}"#);
        let id = query_id.clone();
        let get = mock!(Logs::get_query_results)
            .match_requests(move |r| r.query_id() == Some(id.as_str()))
            .sequence()
            .http_response(move || http(200, running))
            .http_response(move || http(200, ended.clone()))
            .build();
        let start = start_ok(&query_id);
        let stop = stop_ok();
        let mocks = Mocks::new(
            identity(ACCOUNT_A),
            no_stack(),
            vec![start.clone(), get.clone(), stop.clone()],
        );

        let (reports, recorder) = collect(
            &one_account_with_log_group(),
            &options(span),
            &CancellationToken::new(),
            &[&mocks],
        )
        .await;

        match failure(&reports[0]) {
            AccountFailure::Query(QueryError::Ended {
                query_id: id,
                status: reported,
            }) => {
                assert_eq!(*id, query_id);
                assert_eq!(reported, status);
            }
            other => panic!("status {status}: expected QueryError::Ended, got {other:?}"),
        }
        assert_eq!(
            failure(&reports[0]).to_string(),
            format!("query {query_id} ended with status {status}")
        );
        assert_eq!(get.num_calls(), 2, "status {status}");
        assert_eq!(start.num_calls(), 1, "status {status}");
        assert_eq!(
            stop.num_calls(),
            0,
            "status {status}: an ended query needs no StopQuery"
        );
        assert_eq!(reports[0].log_group.as_deref(), Some(LOG_GROUP));
        assert_eq!(
            *recorder.finished.lock().unwrap(),
            vec![ACCOUNT_A.to_string()]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. The real sample response, through the SDK's own deserializer
// ---------------------------------------------------------------------------------------------

const SAMPLE: &str = include_str!("fixtures/get-query-results-binned.json");

#[tokio::test]
async fn the_sample_get_query_results_body_is_parsed_into_rows() {
    // 3 hours: windows ending 14:00, 15:00 and 16:00; the sample has rows for the last two.
    let span = hourly_span("2026-12-02T16:00:00Z", 3);
    let get = mock!(Logs::get_query_results).then_http_response(|| http(200, SAMPLE));
    let start = start_ok("q-sample");
    let mocks = Mocks::new(
        identity(ACCOUNT_A),
        no_stack(),
        vec![start.clone(), get.clone(), stop_ok()],
    );

    let (reports, _) = collect(
        &one_account_with_log_group(),
        &options(span),
        &CancellationToken::new(),
        &[&mocks],
    )
    .await;

    assert_eq!(
        plain_rows(&reports[0]),
        vec![
            ("Palm Beach".into(), "2026-12-02T15:00:00Z".into(), 0.9312),
            ("St. Lucie".into(), "2026-12-02T15:00:00Z".into(), 0.7741),
            ("Miami-Dade".into(), "2026-12-02T16:00:00Z".into(), 0.9958),
        ]
    );
    let data = reports[0].result.as_ref().unwrap();
    assert_eq!(data.bytes_scanned, 3187.0);
    assert_eq!(data.queries, 1);
    assert!(
        data.rows
            .iter()
            .all(|r| r.window.end() - r.window.start() == jiff::SignedDuration::from_hours(1))
    );
    assert_eq!(get.num_calls(), 1);
}

// ---------------------------------------------------------------------------------------------
// 3. Throttling on StartQuery is absorbed by the SDK's retries
// ---------------------------------------------------------------------------------------------

async fn start_query_throttled_twice(code: &'static str) {
    let span = hourly_span("2026-12-02T16:00:00Z", 2);
    let start = mock!(Logs::start_query)
        .sequence()
        .http_response(move || http(400, logs_error(code, "Rate exceeded")))
        .times(2)
        .output(|| StartQueryOutput::builder().query_id("q-retried").build())
        .build();
    let get = mock!(Logs::get_query_results)
        .match_requests(|r| r.query_id() == Some("q-retried"))
        .then_output(|| {
            results(
                QueryStatus::Complete,
                vec![row("Palm Beach", ts("2026-12-02T15:00:00Z"), "0.75")],
                1.0,
            )
        });
    let mocks = Mocks::new(
        identity(ACCOUNT_A),
        no_stack(),
        vec![start.clone(), get.clone(), stop_ok()],
    );

    let (reports, _) = collect(
        &one_account_with_log_group(),
        &options(span),
        &CancellationToken::new(),
        &[&mocks],
    )
    .await;

    assert_eq!(
        plain_rows(&reports[0]),
        vec![("Palm Beach".into(), "2026-12-02T16:00:00Z".into(), 0.75)],
        "{code}"
    );
    assert_eq!(
        start.num_calls(),
        3,
        "{code}: two throttled attempts and one success"
    );
    assert_eq!(get.num_calls(), 1, "{code}");
}

#[tokio::test]
async fn start_query_limit_exceeded_twice_is_retried() {
    start_query_throttled_twice("LimitExceededException").await;
}

#[tokio::test]
async fn start_query_throttling_exception_twice_is_retried() {
    start_query_throttled_twice("ThrottlingException").await;
}

#[tokio::test]
async fn start_query_throttled_on_every_attempt_fails_the_account_after_eight() {
    let span = hourly_span("2026-12-02T16:00:00Z", 2);
    let start = mock!(Logs::start_query)
        .sequence()
        .http_response(|| http(400, logs_error("LimitExceededException", "Rate exceeded")))
        .repeatedly()
        .build();
    let get =
        mock!(Logs::get_query_results).then_output(|| results(QueryStatus::Complete, vec![], 0.0));
    let mocks = Mocks::new(
        identity(ACCOUNT_A),
        no_stack(),
        vec![start.clone(), get.clone(), stop_ok()],
    );

    let (reports, _) = collect(
        &one_account_with_log_group(),
        &options(span),
        &CancellationToken::new(),
        &[&mocks],
    )
    .await;

    let failure = failure(&reports[0]);
    assert!(
        matches!(failure, AccountFailure::Query(QueryError::Start { .. })),
        "{failure:?}"
    );
    let message = failure.to_string();
    assert!(
        message.starts_with(&format!("Failed to start query on log group {LOG_GROUP}: ")),
        "{message}"
    );
    assert!(message.contains("Rate exceeded"), "{message}");
    assert_eq!(start.num_calls(), 8, "max_attempts(8)");
    assert_eq!(get.num_calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// 4. One failing account never costs the others; identity is checked before anything else
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_failing_account_is_reported_and_the_other_succeeds_in_input_order() {
    let span = hourly_span("2026-12-02T16:00:00Z", 2);
    // A: finds its log group through its own stack (per-entry stack_name), polls twice, completes.
    let a_start = mock!(Logs::start_query)
        .match_requests(|r| r.log_group_name() == Some("/aws/lambda/group-of-a"))
        .then_output(|| StartQueryOutput::builder().query_id("q-a").build());
    let a_get = mock!(Logs::get_query_results)
        .match_requests(|r| r.query_id() == Some("q-a"))
        .sequence()
        .output(|| results(QueryStatus::Running, vec![], 0.0))
        .times(2)
        .output(|| {
            results(
                QueryStatus::Complete,
                vec![
                    row("Palm Beach", ts("2026-12-02T14:00:00Z"), "0.25"),
                    row("Palm Beach", ts("2026-12-02T15:00:00Z"), "0.5"),
                ],
                2.0,
            )
        })
        .build();
    let a = Mocks::new(
        identity(ACCOUNT_A),
        stack_with_outputs(
            "stack-of-a",
            &[("Other", "x"), (OUTPUT_KEY, "/aws/lambda/group-of-a")],
        ),
        vec![a_start.clone(), a_get.clone(), stop_ok()],
    );
    // B: the stack does not exist (CloudFormation's awsQuery XML error, as the service sends it).
    let b_stack = mock!(aws_sdk_cloudformation::Client::describe_stacks)
        .match_requests(|r| r.stack_name() == Some(STACK))
        .then_http_response(|| {
            http(
                400,
                "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">\n\
                 <Error><Type>Sender</Type><Code>ValidationError</Code>\
                 <Message>Stack with id elephant-oracle-node does not exist</Message></Error>\n\
                 <RequestId>4af14eec-350e-11e4-b260-EXAMPLE</RequestId>\n\
                 </ErrorResponse>",
            )
        });
    let b_start = start_ok("q-b");
    let b_get =
        mock!(Logs::get_query_results).then_output(|| results(QueryStatus::Complete, vec![], 0.0));
    let b = Mocks::new(
        identity(ACCOUNT_B),
        b_stack,
        vec![b_start.clone(), b_get.clone(), stop_ok()],
    );

    let accounts = accounts(&format!(
        "- Account ID: '{ACCOUNT_A}'\n  stack_name: stack-of-a\n- Account ID: '{ACCOUNT_B}'\n"
    ));
    let (reports, recorder) = collect(
        &accounts,
        &options(span),
        &CancellationToken::new(),
        &[&a, &b],
    )
    .await;

    assert_eq!(
        reports
            .iter()
            .map(|r| r.account.to_string())
            .collect::<Vec<_>>(),
        vec![ACCOUNT_A, ACCOUNT_B],
        "reports come back in input order"
    );
    // B finished first (it never polls), so the order above is the sort's doing, not luck.
    assert_eq!(
        *recorder.finished.lock().unwrap(),
        vec![ACCOUNT_B.to_string(), ACCOUNT_A.to_string()]
    );

    assert_eq!(
        plain_rows(&reports[0]),
        vec![
            ("Palm Beach".into(), "2026-12-02T15:00:00Z".into(), 0.25),
            ("Palm Beach".into(), "2026-12-02T16:00:00Z".into(), 0.5),
        ]
    );
    assert_eq!(
        reports[0].log_group.as_deref(),
        Some("/aws/lambda/group-of-a")
    );
    assert_eq!(a.describe_stacks.num_calls(), 1);
    assert_eq!(a_get.num_calls(), 3);

    let b_failure = failure(&reports[1]);
    let message = b_failure.to_string();
    assert!(message.contains("Failed to describe stack"), "{message}");
    assert!(message.contains(STACK), "{message}");
    assert!(
        matches!(b_failure, AccountFailure::Stack(StackError::NotFound { stack, region })
            if stack == STACK && region == "us-east-1"),
        "a ValidationError '... does not exist' is a missing stack: {b_failure:?}"
    );
    assert_eq!(
        reports[1].identity.as_deref(),
        Some("arn:aws:iam::222222222222:user/mvl-monitor"),
        "what was learned before the failure is kept"
    );
    assert_eq!(reports[1].log_group, None);
    assert_eq!(
        b.describe_stacks.num_calls(),
        1,
        "a ValidationError is not retried"
    );
    assert_eq!(b_start.num_calls(), 0);
    assert_eq!(b_get.num_calls(), 0);
    assert_eq!(
        *recorder.log_groups.lock().unwrap(),
        vec![(ACCOUNT_A.to_string(), "/aws/lambda/group-of-a".to_string())]
    );
}

#[tokio::test]
async fn credentials_of_another_account_are_refused_before_any_query() {
    let span = hourly_span("2026-12-02T16:00:00Z", 2);
    let start = start_ok("q-never");
    let get =
        mock!(Logs::get_query_results).then_output(|| results(QueryStatus::Complete, vec![], 0.0));
    let stop = stop_ok();
    // The entry says A; the keys belong to B.
    let mocks = Mocks::new(
        identity(ACCOUNT_B),
        no_stack(),
        vec![start.clone(), get.clone(), stop.clone()],
    );
    let accounts = accounts(&format!("- Account ID: '{ACCOUNT_A}'\n"));

    let (reports, recorder) = collect(
        &accounts,
        &options(span),
        &CancellationToken::new(),
        &[&mocks],
    )
    .await;

    let failure = failure(&reports[0]);
    match failure {
        AccountFailure::Identity(IdentityError::Mismatch {
            expected,
            actual,
            arn,
        }) => {
            assert_eq!(expected.as_str(), ACCOUNT_A);
            assert_eq!(actual, ACCOUNT_B);
            assert_eq!(arn, "arn:aws:iam::222222222222:user/mvl-monitor");
        }
        other => panic!("expected IdentityError::Mismatch, got {other:?}"),
    }
    let message = failure.to_string();
    assert!(
        message.contains(&format!(
            "the credentials for account {ACCOUNT_A} belong to account {ACCOUNT_B}"
        )),
        "{message}"
    );
    assert_eq!(reports[0].identity, None);
    assert_eq!(reports[0].log_group, None);
    assert_eq!(mocks.identity.num_calls(), 1);
    // The stack is read while the identity is checked (read-only); nothing is queried.
    assert!(mocks.describe_stacks.num_calls() <= 1);
    assert_eq!(start.num_calls(), 0);
    assert_eq!(get.num_calls(), 0);
    assert_eq!(stop.num_calls(), 0);
    assert!(recorder.log_groups.lock().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 5. A full result is split until every row is in
// ---------------------------------------------------------------------------------------------

const COUNTIES: usize = 60;

fn county(c: usize) -> String {
    format!("County {c:02}")
}

/// The average of county `c` over window `w` (0-based from the span's start).
fn truth(c: usize, w: i64) -> f64 {
    c as f64 + w as f64 / 1000.0
}

/// A fake Logs Insights over `COUNTIES` counties with one value per hour from `origin`: answers each
/// query from its own startTime/endTime (endTime inclusive, as the service does: the bin starting at
/// endTime holds only that last second's events, so it gets a different value) and truncates at the
/// limit. Returns (StartQuery rule, GetQueryResults rule, the (start, end) of every query started).
#[allow(clippy::type_complexity)]
fn fake_insights(origin: Timestamp, counties: usize) -> (Rule, Rule, Arc<Mutex<Vec<(i64, i64)>>>) {
    let queries: Arc<Mutex<HashMap<String, (i64, i64, i32)>>> = Arc::default();
    let started: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(1));
    let start = {
        let queries = queries.clone();
        let started = started.clone();
        mock!(Logs::start_query).then_compute_output(move |r| {
            let id = format!("q-{}", next.fetch_add(1, Ordering::SeqCst));
            let (s, e) = (r.start_time().unwrap(), r.end_time().unwrap());
            queries
                .lock()
                .unwrap()
                .insert(id.clone(), (s, e, r.limit().unwrap()));
            started.lock().unwrap().push((s, e));
            StartQueryOutput::builder().query_id(id).build()
        })
    };
    let origin = origin.as_second();
    let get = mock!(Logs::get_query_results).then_compute_output(move |r| {
        let (s, e, limit) = queries.lock().unwrap()[r.query_id().unwrap()];
        let mut rows = Vec::new();
        let mut bin = s;
        while bin <= e {
            let w = (bin - origin) / 3600;
            for c in 0..counties {
                let value = if bin == e { 0.000_123 } else { truth(c, w) };
                rows.push(row(
                    &county(c),
                    Timestamp::from_second(bin).unwrap(),
                    &value.to_string(),
                ));
            }
            bin += 3600;
        }
        rows.truncate(limit as usize);
        results(QueryStatus::Complete, rows, 1000.0)
    });
    (start, get, started)
}

#[tokio::test]
async fn a_full_result_is_split_and_every_row_arrives_exactly_once() {
    // 288 hourly windows x 60 counties = 17,280 rows: the first query is truncated at 10,000, then
    // two parts of 144 windows (8,640 rows each) fit.
    let span = hourly_span("2026-12-02T00:00:00Z", 288);
    assert_eq!(span.window_count(), 288);
    let (start, get, started) = fake_insights(span.start, COUNTIES);
    let stop = stop_ok();
    let mocks = Mocks::new(
        identity(ACCOUNT_A),
        no_stack(),
        vec![start.clone(), get.clone(), stop.clone()],
    );

    let (reports, _) = collect(
        &one_account_with_log_group(),
        &options(span),
        &CancellationToken::new(),
        &[&mocks],
    )
    .await;

    let data = match &reports[0].result {
        Ok(data) => data,
        Err(err) => panic!("{err}"),
    };
    assert_eq!(data.rows.len(), 288 * COUNTIES);
    let mut seen = HashSet::new();
    for r in &data.rows {
        assert!(
            seen.insert((r.county.to_string(), r.window.start())),
            "row {} {} arrived twice",
            r.county,
            r.window.start()
        );
        assert_eq!(
            r.window.end().as_second() - r.window.start().as_second(),
            3600
        );
        let w = (r.window.start().as_second() - span.start.as_second()) / 3600;
        assert!(
            (0..288).contains(&w),
            "window {} outside the span",
            r.window.start()
        );
        let c: usize = r.county.trim_start_matches("County ").parse().unwrap();
        assert_eq!(r.value, truth(c, w), "value of {} in window {w}", r.county);
    }
    for c in 0..COUNTIES {
        for w in 0..288i64 {
            let start = Timestamp::from_second(span.start.as_second() + w * 3600).unwrap();
            assert!(
                seen.contains(&(county(c), start)),
                "missing {} at {start}",
                county(c)
            );
        }
    }
    assert_eq!(start.num_calls(), 3, "1 full query + 2 parts");
    assert_eq!(get.num_calls(), 3);
    assert_eq!(stop.num_calls(), 0);
    assert_eq!(data.queries, 3);
    assert_eq!(data.bytes_scanned, 3000.0);
    assert_eq!(data.skipped_rows, 0);

    let middle = span.start.as_second() + 144 * 3600;
    let mut spans = started.lock().unwrap().clone();
    spans.sort();
    assert_eq!(
        spans,
        vec![
            (span.start.as_second(), middle),
            (span.start.as_second(), span.end.as_second()),
            (middle, span.end.as_second()),
        ]
    );
}

#[tokio::test]
async fn a_full_result_in_a_single_window_is_too_many_counties() {
    let span = hourly_span("2026-12-02T16:00:00Z", 1);
    assert_eq!(span.window_count(), 1);
    let (start, get, _) = fake_insights(span.start, MAX_QUERY_ROWS as usize);
    let mocks = Mocks::new(
        identity(ACCOUNT_A),
        no_stack(),
        vec![start.clone(), get.clone(), stop_ok()],
    );

    let (reports, _) = collect(
        &one_account_with_log_group(),
        &options(span),
        &CancellationToken::new(),
        &[&mocks],
    )
    .await;

    let failure = failure(&reports[0]);
    match failure {
        AccountFailure::TooManyCounties { window } => assert_eq!(*window, span.to_string()),
        other => panic!("expected TooManyCounties, got {other:?}"),
    }
    assert!(
        failure
            .to_string()
            .starts_with("more than 10000 counties in the single window 2026-12-02T15:00:00Z .. 2026-12-02T16:00:00Z"),
        "{failure}"
    );
    assert_eq!(start.num_calls(), 1, "a single window cannot be split");
}

#[tokio::test]
async fn a_failing_part_stops_the_other_running_part() {
    let span = hourly_span("2026-12-02T00:00:00Z", 288);
    let (start, full, started) = fake_insights(span.start, COUNTIES);
    // The first query (q-1) answers from the fake (full); of the two parts, the one starting at the
    // span's start fails and the other never finishes.
    let first_half_start = span.start.as_second();
    let ids_by_start: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let get = {
        let started = started.clone();
        let ids = ids_by_start.clone();
        mock!(Logs::get_query_results)
            .match_requests(|r| r.query_id() != Some("q-1"))
            .then_compute_output(move |r| {
                let id = r.query_id().unwrap().to_string();
                let n: usize = id.trim_start_matches("q-").parse().unwrap();
                let (s, _) = started.lock().unwrap()[n - 1];
                ids.lock().unwrap().insert(id, s);
                let status = if s == first_half_start {
                    QueryStatus::Failed
                } else {
                    QueryStatus::Running
                };
                results(status, vec![], 0.0)
            })
    };
    let stop = stop_ok();
    let mocks = Mocks::new(
        identity(ACCOUNT_A),
        no_stack(),
        vec![start.clone(), get.clone(), full.clone(), stop.clone()],
    );

    // A long deadline: the running part must be stopped because its sibling failed, not by timing out.
    let mut options = options(span);
    options.poll.deadline = Duration::from_secs(20);
    let began = Instant::now();
    let (reports, _) = collect(
        &one_account_with_log_group(),
        &options,
        &CancellationToken::new(),
        &[&mocks],
    )
    .await;
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );

    let failure = failure(&reports[0]);
    let ids = ids_by_start.lock().unwrap().clone();
    let failed_id = ids
        .iter()
        .find(|(_, s)| **s == first_half_start)
        .unwrap()
        .0
        .clone();
    match failure {
        AccountFailure::Query(QueryError::Ended { query_id, status }) => {
            assert_eq!(*query_id, failed_id);
            assert_eq!(status, "Failed");
        }
        other => panic!("expected the failed part's error, got {other:?}"),
    }
    assert_eq!(start.num_calls(), 3);
    assert_eq!(full.num_calls(), 1);
    assert_eq!(
        stop.num_calls(),
        1,
        "the still-running part is stopped, the ended one is not"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Deadline and cancellation stop the query on the service
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_query_running_past_its_deadline_is_stopped() {
    let span = hourly_span("2026-12-02T16:00:00Z", 2);
    let start = start_ok("q-slow");
    let get = mock!(Logs::get_query_results)
        .match_requests(|r| r.query_id() == Some("q-slow"))
        .then_output(|| results(QueryStatus::Running, vec![], 0.0));
    let stop_this = stop_ok_for("q-slow");
    let stop_other = stop_ok();
    let logs = logs_client(&[&start, &get, &stop_this, &stop_other]);
    let slots = ResultSlots(Arc::new(Semaphore::new(1)));
    let policy = fast_poll(Duration::from_millis(50));

    let began = Instant::now();
    let outcome = insights::run_query(
        &logs,
        LOG_GROUP,
        &span,
        &policy,
        &slots,
        &CancellationToken::new(),
    )
    .await;
    let elapsed = began.elapsed();

    match outcome {
        Err(QueryError::Deadline { query_id, .. }) => assert_eq!(query_id, "q-slow"),
        other => panic!("expected QueryError::Deadline, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(
        get.num_calls() >= 3,
        "polled until the deadline: {}",
        get.num_calls()
    );
    assert_eq!(stop_this.num_calls(), 1, "StopQuery with the query's id");
    assert_eq!(stop_other.num_calls(), 0);
}

#[tokio::test]
async fn cancelling_while_running_stops_the_query_and_reports_cancelled() {
    let span = hourly_span("2026-12-02T16:00:00Z", 2);
    let cancel = CancellationToken::new();
    let start = start_ok("q-cancel");
    // The user presses Ctrl-C while the query is running: on the second poll.
    let get = {
        let cancel = cancel.clone();
        let polls = AtomicUsize::new(0);
        mock!(Logs::get_query_results)
            .match_requests(|r| r.query_id() == Some("q-cancel"))
            .then_compute_output(move |_| {
                if polls.fetch_add(1, Ordering::SeqCst) == 1 {
                    cancel.cancel();
                }
                results(
                    QueryStatus::Running,
                    vec![row("Palm Beach", ts("2026-12-02T15:00:00Z"), "0.1")],
                    0.0,
                )
            })
    };
    let stop_this = stop_ok_for("q-cancel");
    let stop_other = stop_ok();
    let mocks = Mocks::new(
        identity(ACCOUNT_A),
        no_stack(),
        vec![
            start.clone(),
            get.clone(),
            stop_this.clone(),
            stop_other.clone(),
        ],
    );

    let (reports, recorder) = collect(
        &one_account_with_log_group(),
        &options(span),
        &cancel,
        &[&mocks],
    )
    .await;

    assert!(
        matches!(failure(&reports[0]), AccountFailure::Cancelled),
        "{:?}",
        reports[0].result
    );
    assert_eq!(failure(&reports[0]).to_string(), "cancelled");
    assert_eq!(reports[0].log_group.as_deref(), Some(LOG_GROUP));
    assert_eq!(get.num_calls(), 2, "no poll after the cancellation");
    assert_eq!(stop_this.num_calls(), 1);
    assert_eq!(stop_other.num_calls(), 0);
    assert_eq!(
        *recorder.finished.lock().unwrap(),
        vec![ACCOUNT_A.to_string()]
    );
}

// ---------------------------------------------------------------------------------------------
// 7. A missing log group
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn start_query_on_a_missing_log_group_says_so() {
    let span = hourly_span("2026-12-02T16:00:00Z", 2);
    let start = mock!(Logs::start_query).then_http_response(|| {
        http(
            400,
            logs_error(
                "ResourceNotFoundException",
                "The specified log group does not exist.",
            ),
        )
    });
    let get =
        mock!(Logs::get_query_results).then_output(|| results(QueryStatus::Complete, vec![], 0.0));
    let mocks = Mocks::new(
        identity(ACCOUNT_A),
        no_stack(),
        vec![start.clone(), get.clone(), stop_ok()],
    );

    let (reports, _) = collect(
        &one_account_with_log_group(),
        &options(span),
        &CancellationToken::new(),
        &[&mocks],
    )
    .await;

    let failure = failure(&reports[0]);
    assert!(
        matches!(failure, AccountFailure::Query(QueryError::LogGroupNotFound { log_group, .. }) if log_group == LOG_GROUP),
        "{failure:?}"
    );
    assert_eq!(
        failure.to_string(),
        format!(
            "Failed to start query on log group {LOG_GROUP}: the log group does not exist \
             (The specified log group does not exist.)"
        )
    );
    assert_eq!(start.num_calls(), 1, "not retried");
    assert_eq!(get.num_calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// 8. A stack without the output
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_stack_without_the_output_names_the_outputs_it_has() {
    let span = hourly_span("2026-12-02T16:00:00Z", 2);
    let start = start_ok("q-never");
    let mocks = Mocks::new(
        identity(ACCOUNT_A),
        stack_with_outputs(STACK, &[("ApiUrl", "https://x"), ("BucketName", "b")]),
        vec![start.clone(), stop_ok()],
    );
    let accounts = accounts(&format!("- Account ID: '{ACCOUNT_A}'\n"));

    let (reports, _) = collect(
        &accounts,
        &options(span),
        &CancellationToken::new(),
        &[&mocks],
    )
    .await;

    let failure = failure(&reports[0]);
    match failure {
        AccountFailure::Stack(StackError::OutputMissing {
            stack,
            key,
            available,
        }) => {
            assert_eq!(stack, STACK);
            assert_eq!(key, OUTPUT_KEY);
            assert_eq!(available, "ApiUrl, BucketName");
        }
        other => panic!("expected StackError::OutputMissing, got {other:?}"),
    }
    assert!(
        failure.to_string().starts_with(&format!(
            "stack {STACK} has no output {OUTPUT_KEY} (outputs: ApiUrl, BucketName)"
        )),
        "{failure}"
    );
    assert_eq!(mocks.describe_stacks.num_calls(), 1);
    assert_eq!(start.num_calls(), 0);
    assert_eq!(reports[0].log_group, None);
}
