//! Credentials and account safety, end to end on the test bed: profiles, assumed roles, verified
//! identities, secrets kept out of every output, the file-permission warning, and clean cancellation.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use mvl_monitor::accounts::{self, Account, CredentialSource};

fn seeded(bed: &TestBed, accounts: &str) -> (PathBuf, Vec<Account>) {
    let seed = bed.seed(&[
        "--accounts",
        accounts,
        "--counties",
        "3",
        "--hours",
        "2",
        "--end",
        &recent_end(),
    ]);
    let path = seed.join("accounts.yaml");
    let parsed = accounts::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    (seed, parsed)
}

fn keys(account: &Account) -> (String, String, String) {
    match &account.credentials {
        CredentialSource::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } => (
            access_key_id.clone(),
            secret_access_key.expose().to_string(),
            session_token
                .as_ref()
                .map(|t| t.expose().to_string())
                .unwrap_or_default(),
        ),
        other => panic!("seeded accounts have static keys, got {other:?}"),
    }
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    set_mode(path, 0o600);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn collect(bed: &TestBed, accounts: &Path, out: &Path, extra: &[&str]) -> std::process::Command {
    let end = recent_end();
    let endpoint = bed.endpoint();
    let mut args = vec![
        "collect",
        "--accounts",
        accounts.to_str().unwrap(),
        "--endpoint-url",
        endpoint.as_str(),
        "--end",
        end.as_str(),
        "--range-hours",
        "2",
        "--out-dir",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut cmd = mvl(&args);
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    cmd
}

#[test]
fn a_profile_from_a_shared_config_file() {
    let bed = TestBed::start(&[]);
    let (seed, seeded) = seeded(&bed, "1");
    let (akid, secret, token) = keys(&seeded[0]);
    let config = bed.dir.path().join("aws-config");
    write_private(
        &config,
        &format!(
            "[profile ops]\naws_access_key_id = {akid}\naws_secret_access_key = {secret}\naws_session_token = {token}\nregion = us-east-1\n"
        ),
    );
    let file = bed.dir.path().join("accounts.yaml");
    write_private(&file, "- Account ID: '100000000001'\n  profile: ops\n");
    let out = bed.dir.path().join("out");
    let output = run(collect(&bed, &file, &out, &["--no-plot"]).env("AWS_CONFIG_FILE", &config));
    assert_exit(&output, 0);
    assert_csv_matches(
        &only_file(&out, "csv"),
        &ground_truth_where(&seed, |a| a == "100000000001"),
    );
}

#[test]
fn a_role_assumed_into_the_account_through_the_endpoint() {
    let bed = TestBed::start(&[]);
    let (seed, _) = seeded(&bed, "2");
    let file = bed.dir.path().join("accounts.yaml");
    write_private(
        &file,
        "- Account ID: '100000000002'\n  role_arn: arn:aws:iam::100000000002:role/mvl-reader\n  external_id: xid-1\n",
    );
    let out = bed.dir.path().join("out");
    let output = run(&mut collect(&bed, &file, &out, &["--no-plot"]));
    assert_exit(&output, 0);
    assert_csv_matches(
        &only_file(&out, "csv"),
        &ground_truth_where(&seed, |a| a == "100000000002"),
    );
    // The AssumeRole call and the identity check reached the emulator: --endpoint-url covers STS.
    assert!(bed.requests("sts:AssumeRole") >= 3, "{}", bed.stats()); // 2 by the seeder, 1 by us
    assert_eq!(bed.requests("sts:GetCallerIdentity"), 1, "{}", bed.stats());
}

#[test]
fn the_endpoint_from_aws_endpoint_url_reaches_sts_too() {
    let bed = TestBed::start(&[]);
    let (_, _) = seeded(&bed, "1");
    let file = bed.dir.path().join("accounts.yaml");
    write_private(
        &file,
        "- Account ID: '100000000001'\n  role_arn: arn:aws:iam::100000000001:role/mvl-reader\n",
    );
    let out = bed.dir.path().join("out");
    let end = recent_end();
    let before = bed.requests("sts:AssumeRole");
    let output = run(mvl(&[
        "collect",
        "--accounts",
        file.to_str().unwrap(),
        "--end",
        &end,
        "--range-hours",
        "2",
        "--out-dir",
        out.to_str().unwrap(),
        "--no-plot",
    ])
    .env("AWS_ENDPOINT_URL", bed.endpoint())
    .env("AWS_ACCESS_KEY_ID", "testing")
    .env("AWS_SECRET_ACCESS_KEY", "testing"));
    assert_exit(&output, 0);
    assert_eq!(bed.requests("sts:AssumeRole"), before + 1);
    assert_eq!(bed.requests("sts:GetCallerIdentity"), 1);
}

#[test]
fn keys_filed_under_the_wrong_account_are_refused() {
    let bed = TestBed::start(&[]);
    let (_, seeded) = seeded(&bed, "2");
    let (a_key, a_secret, a_token) = keys(&seeded[0]);
    let (b_key, b_secret, b_token) = keys(&seeded[1]);
    let file = bed.dir.path().join("accounts.yaml");
    // Account 1's keys under account 2's id and the other way round.
    write_private(
        &file,
        &format!(
            "- Account ID: '100000000001'\n  aws_access_key_id: {b_key}\n  aws_secret_access_key: {b_secret}\n  aws_session_token: {b_token}\n\
             - Account ID: '100000000002'\n  aws_access_key_id: {a_key}\n  aws_secret_access_key: {a_secret}\n  aws_session_token: {a_token}\n"
        ),
    );
    let out = bed.dir.path().join("out");
    let output = run(&mut collect(&bed, &file, &out, &[]));
    assert_exit(&output, 1);
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("the credentials for account 100000000001 belong to account 100000000002"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the credentials for account 100000000002 belong to account 100000000001"),
        "{stderr}"
    );
    // Nothing is queried with credentials of the wrong account.
    assert_eq!(bed.requests("logs:StartQuery"), 0);
    assert!(files_in(&out).is_empty());

    let output = check(&bed, &file);
    assert_exit(&output, 3);
    assert!(text(&output).0.contains(
        "FAILED: the credentials for account 100000000001 belong to account 100000000002"
    ));
}

#[test]
fn secrets_appear_in_no_output_of_a_run() {
    let bed = TestBed::start(&[]);
    let (seed, seeded) = seeded(&bed, "2");
    let file = seed.join("accounts.yaml");
    set_mode(&file, 0o600);
    let out = bed.dir.path().join("out");
    let mut secrets = vec![
        "testbed-password-1".to_string(),
        "testbed-password-2".to_string(),
    ];
    for account in &seeded {
        let (_, secret, token) = keys(account);
        secrets.push(secret);
        secrets.push(token);
    }
    // Most verbose logging, a failing account (error paths print more), and check too.
    let broken = bed.dir.path().join("broken.yaml");
    let mut text_file = std::fs::read_to_string(&file).unwrap();
    text_file.push_str("- Account ID: '100000000009'\n  aws_access_key_id: AKIAIOSFODNN7EXAMPLE\n  aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n  password: hunter2-EXAMPLE\n");
    write_private(&broken, &text_file);
    secrets.push("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into());
    secrets.push("hunter2-EXAMPLE".into());
    let mut everything = String::new();
    for output in [
        run(&mut collect(&bed, &broken, &out, &["-vv"])),
        run(&mut mvl(&[
            "check",
            "-vv",
            "--accounts",
            broken.to_str().unwrap(),
            "--endpoint-url",
            &bed.endpoint(),
        ])),
    ] {
        let (stdout, stderr) = text(&output);
        everything.push_str(&stdout);
        everything.push_str(&stderr);
    }
    for path in files_in(&out) {
        everything.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
    }
    assert!(
        everything.contains("Account 100000000009 failed"),
        "the run did not exercise an error path"
    );
    assert!(
        everything.len() > 2000,
        "verbose logging produced little output"
    );
    for secret in &secrets {
        assert!(!secret.is_empty());
        assert!(
            !everything.contains(secret.as_str()),
            "a secret was printed: {}...",
            &secret[..6]
        );
    }
}

#[test]
fn a_key_file_readable_by_others_gets_a_warning_with_the_fix() {
    let bed = TestBed::start(&[]);
    let (seed, _) = seeded(&bed, "1");
    let file = seed.join("accounts.yaml");
    let out = bed.dir.path().join("out");
    set_mode(&file, 0o644);
    let output = run(&mut collect(&bed, &file, &out, &["--no-plot"]));
    assert_exit(&output, 0);
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("holds secret keys and is readable by others (mode 644)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("chmod 600 {}", file.display())),
        "{stderr}"
    );

    set_mode(&file, 0o640);
    let output = run(&mut collect(
        &bed,
        &file,
        &bed.dir.path().join("out2"),
        &["--no-plot", "-q"],
    ));
    assert!(text(&output).1.contains("readable by its group (mode 640)"));

    set_mode(&file, 0o600);
    let output = run(&mut collect(
        &bed,
        &file,
        &bed.dir.path().join("out3"),
        &["--no-plot"],
    ));
    assert!(
        !text(&output).1.contains("readable by"),
        "{}",
        text(&output).1
    );

    // A file without secrets (role or profile entries) needs no warning.
    let roles = bed.dir.path().join("roles.yaml");
    std::fs::write(
        &roles,
        "- Account ID: '100000000001'\n  role_arn: arn:aws:iam::100000000001:role/r\n",
    )
    .unwrap();
    set_mode(&roles, 0o644);
    let output = run(&mut collect(
        &bed,
        &roles,
        &bed.dir.path().join("out4"),
        &["--no-plot"],
    ));
    assert_exit(&output, 0);
    assert!(!text(&output).1.contains("readable by"));
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn interrupt_during_a_slow_query(signal: &str) {
    let bed = TestBed::start(&["--query-latency", "120"]);
    let (seed, _) = seeded(&bed, "3");
    let file = seed.join("accounts.yaml");
    set_mode(&file, 0o600);
    let out = bed.dir.path().join("out");
    let mut child = collect(&bed, &file, &out, &[]).spawn().unwrap();
    wait_for("three queries to start", Duration::from_secs(60), || {
        bed.requests("logs:GetQueryResults") >= 3
    });
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?} to stop",
        started.elapsed()
    );
    let stats = bed.stats();
    let started_ids: Vec<String> = stats["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queryId"].as_str().unwrap().to_string())
        .collect();
    let stopped: Vec<String> = stats["stopped_queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q.as_str().unwrap().to_string())
        .collect();
    assert_eq!(started_ids.len(), 3, "{stats}");
    for id in &started_ids {
        assert!(stopped.contains(id), "query {id} was not stopped: {stats}");
    }
    // No output and no temporary file left behind (the directory exists: it is made before querying).
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
}

#[test]
fn sigint_stops_running_queries_and_leaves_no_files() {
    interrupt_during_a_slow_query("-INT");
}

#[test]
fn sigterm_stops_running_queries_and_leaves_no_files() {
    interrupt_during_a_slow_query("-TERM");
}

#[test]
fn a_role_assumed_from_a_named_profile() {
    let bed = TestBed::start(&[]);
    let (seed, _) = seeded(&bed, "1");
    let config = bed.dir.path().join("aws-config");
    write_private(
        &config,
        "[profile base]\naws_access_key_id = AKIDBASEEXAMPLE\naws_secret_access_key = base-secret-EXAMPLE\n",
    );
    let file = bed.dir.path().join("accounts.yaml");
    write_private(
        &file,
        "- Account ID: '100000000001'\n  role_arn: arn:aws:iam::100000000001:role/mvl-reader\n  profile: base\n",
    );
    let out = bed.dir.path().join("out");
    let before = bed.requests("sts:AssumeRole");
    // No credentials in the environment: the role can only be assumed with the profile's keys.
    let output = run(collect(&bed, &file, &out, &["--no-plot"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", &config));
    assert_exit(&output, 0);
    assert_eq!(bed.requests("sts:AssumeRole"), before + 1);
    assert_csv_matches(
        &only_file(&out, "csv"),
        &ground_truth_where(&seed, |a| a == "100000000001"),
    );

    // The same entry with an unknown profile fails that account with the provider's reason.
    write_private(
        &file,
        "- Account ID: '100000000001'\n  role_arn: arn:aws:iam::100000000001:role/mvl-reader\n  profile: missing\n",
    );
    let output = run(
        collect(&bed, &file, &bed.dir.path().join("out2"), &["--no-plot"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_CONFIG_FILE", &config),
    );
    assert_exit(&output, 1);
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("Account 100000000001 failed: Failed to verify identity"),
        "{stderr}"
    );
    assert!(stderr.contains("missing"), "{stderr}");
}
