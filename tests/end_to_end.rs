//! End-to-end tests on the local test bed: the real binary, real HTTP and SigV4, real CloudFormation
//! stacks and log groups in several accounts (moto server), and a Logs Insights evaluator with AWS's
//! semantics. Numbers are compared with the ground truth the seeder computed from the events it
//! generated, never with the evaluator's answers.

mod common;

use common::*;

/// Seeds `accounts` accounts and runs collect; returns (bed, seed dir, out dir, output).
fn collect_run(
    bed: &TestBed,
    seed_args: &[&str],
    extra: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf, std::process::Output) {
    let seed = bed.seed(seed_args);
    let out = bed.dir.path().join(format!("out-{}", std::process::id()));
    let end = seed_args
        .iter()
        .position(|a| *a == "--end")
        .map(|i| seed_args[i + 1].to_string())
        .unwrap_or_else(recent_end);
    let hours = seed_args
        .iter()
        .position(|a| *a == "--hours")
        .map(|i| seed_args[i + 1].to_string())
        .unwrap_or_else(|| "24".into());
    let accounts = seed.join("accounts.yaml");
    let endpoint = bed.endpoint();
    let mut args = vec![
        "collect",
        "--accounts",
        accounts.to_str().unwrap(),
        "--endpoint-url",
        &endpoint,
        "--end",
        &end,
        "--range-hours",
        &hours,
        "--out-dir",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = run(&mut mvl(&args));
    (seed, out, output)
}

#[test]
fn collect_across_accounts_matches_the_ground_truth() {
    let bed = TestBed::start(&["--query-latency", "0.3"]);
    let end = recent_end();
    let (seed, out, output) = collect_run(
        &bed,
        &[
            "--accounts",
            "4",
            "--counties",
            "6",
            "--hours",
            "6",
            "--end",
            &end,
            "--no-stack",
            "2",
            "--no-events",
            "3",
        ],
        &[],
    );
    // One account has no stack: it fails, the others are written, exit 3.
    assert_exit(&output, 3);
    let (stdout, stderr) = text(&output);
    assert!(stdout.contains("Loaded 4 accounts from"), "{stdout}");
    assert!(
        stdout.contains(
            "Account 100000000001 using log group: /aws/lambda/mvl-validator-100000000001"
        ),
        "{stdout}"
    );
    assert!(
        stderr
            .contains("Account 100000000003 failed: Failed to describe stack elephant-oracle-node"),
        "{stderr}"
    );
    assert!(stdout.contains("Results saved to"), "{stdout}");
    assert!(stdout.contains("Visualization saved to"), "{stdout}");
    assert!(stdout.contains("3 accounts ok, 1 failed"), "{stdout}");

    let csv = only_file(&out, "csv");
    assert_csv_matches(&csv, &seed.join("ground_truth_60.csv"));
    let (w, h, dpi) = png_info(&only_file(&out, "png"));
    assert_eq!((w, h), (4800, 2400));
    assert!((dpi - 300.0).abs() < 0.01, "{dpi}");
    // One query per account that has a stack, whatever the number of windows.
    assert_eq!(bed.requests("logs:StartQuery"), 3);
    // Every identity check went to the endpoint, not to AWS.
    assert_eq!(bed.requests("sts:GetCallerIdentity"), 4);
}

#[test]
fn quarter_hour_windows_match_the_ground_truth() {
    let bed = TestBed::start(&[]);
    let end = recent_end();
    let (seed, out, output) = collect_run(
        &bed,
        &[
            "--accounts",
            "2",
            "--counties",
            "3",
            "--hours",
            "3",
            "--end",
            &end,
            "--granularity",
            "15",
        ],
        &["--granularity-minutes", "15", "--no-plot"],
    );
    assert_exit(&output, 0);
    assert_csv_matches(&only_file(&out, "csv"), &seed.join("ground_truth_15.csv"));
    assert!(
        files_in(&out)
            .iter()
            .all(|p| p.extension().is_none_or(|e| e != "png"))
    );
}

#[test]
fn daily_windows_match_the_ground_truth() {
    let bed = TestBed::start(&[]);
    let end = recent_midnight();
    let (seed, out, output) = collect_run(
        &bed,
        &[
            "--accounts",
            "2",
            "--counties",
            "3",
            "--hours",
            "48",
            "--end",
            &end,
            "--granularity",
            "1440",
            "--events-per-window",
            "1",
        ],
        &["--granularity-minutes", "1440"],
    );
    assert_exit(&output, 0);
    assert_csv_matches(&only_file(&out, "csv"), &seed.join("ground_truth_1440.csv"));
}

#[test]
fn throttled_start_query_still_delivers_every_row() {
    let bed = TestBed::start(&["--throttle-every", "2"]);
    let end = recent_end();
    let (seed, out, output) = collect_run(
        &bed,
        &[
            "--accounts",
            "5",
            "--counties",
            "3",
            "--hours",
            "4",
            "--end",
            &end,
        ],
        &["--no-plot"],
    );
    assert_exit(&output, 0);
    assert_csv_matches(&only_file(&out, "csv"), &seed.join("ground_truth_60.csv"));
    // Five queries went through; every second attempt was refused and retried.
    assert!(bed.requests("logs:StartQuery") >= 9, "{}", bed.stats());
}

#[test]
fn a_failed_query_is_reported_and_the_other_accounts_complete() {
    let bed = TestBed::start(&["--fail-account", "100000000002"]);
    let end = recent_end();
    let (seed, out, output) = collect_run(
        &bed,
        &[
            "--accounts",
            "3",
            "--counties",
            "3",
            "--hours",
            "4",
            "--end",
            &end,
        ],
        &["--no-plot"],
    );
    assert_exit(&output, 3);
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("Account 100000000002 failed: query"),
        "{stderr}"
    );
    assert!(stderr.contains("ended with status Failed"), "{stderr}");
    // The ground truth has all three accounts; the CSV has the two that succeeded.
    let expected = ground_truth_where(&seed, |account| account != "100000000002");
    assert_csv_matches(&only_file(&out, "csv"), &expected);
}

#[test]
fn a_range_past_one_querys_row_limit_comes_back_whole() {
    // 12 days x 60 counties = 17,280 rows: more than the 10,000 one query returns.
    let bed = TestBed::start(&[]);
    let end = recent_end();
    let (seed, out, output) = collect_run(
        &bed,
        &[
            "--accounts",
            "1",
            "--counties",
            "60",
            "--hours",
            "288",
            "--end",
            &end,
            "--events-per-window",
            "1",
        ],
        &["--no-plot"],
    );
    assert_exit(&output, 0);
    let csv = only_file(&out, "csv");
    assert_csv_matches(&csv, &seed.join("ground_truth_60.csv"));
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count() - 1;
    assert_eq!(rows, 17_280);
    // One full query, then two parts that fit.
    assert_eq!(bed.requests("logs:StartQuery"), 3, "{}", bed.stats());
}

#[test]
fn every_account_failing_is_fatal_and_writes_nothing() {
    let bed = TestBed::start(&[]);
    let end = recent_end();
    let (_, out, output) = collect_run(
        &bed,
        &[
            "--accounts",
            "2",
            "--counties",
            "2",
            "--hours",
            "2",
            "--end",
            &end,
            "--no-stack",
            "0",
            "--no-stack",
            "1",
        ],
        &[],
    );
    assert_exit(&output, 1);
    assert!(text(&output).1.contains("every account failed"));
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
}

#[test]
fn check_verifies_identity_stack_and_log_group() {
    let bed = TestBed::start(&[]);
    let seed = bed.seed(&[
        "--accounts",
        "2",
        "--counties",
        "1",
        "--hours",
        "1",
        "--end",
        &recent_end(),
        "--no-stack",
        "1",
    ]);
    let output = check(&bed, &seed.join("accounts.yaml"));
    assert_exit(&output, 3);
    let (stdout, _) = text(&output);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[1].starts_with("ACCOUNT"), "{stdout}");
    assert!(
        lines[2].starts_with("100000000001  arn:aws:sts::100000000001:assumed-role/"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("/aws/lambda/mvl-validator-100000000001"),
        "{stdout}"
    );
    assert!(lines[2].ends_with("ok"), "{stdout}");
    assert!(
        lines[3].contains("FAILED: Failed to describe stack"),
        "{stdout}"
    );
    assert_eq!(bed.requests("logs:StartQuery"), 0);
    assert_eq!(bed.requests("logs:DescribeLogGroups"), 1);
}
