//! The command line from the outside: bad input gets a clear message and the documented exit code,
//! and nothing else happens (no output directory, no AWS call: no endpoint is even reachable here).

mod common;

use common::*;

fn in_temp(args: &[&str]) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let output = run(mvl(args).current_dir(dir.path()));
    (dir, output)
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let (_, output) = in_temp(&["--help"]);
    assert_exit(&output, 0);
    let (stdout, _) = text(&output);
    for needle in [
        "Examples:",
        "Exit codes:",
        "130",
        "--endpoint-url",
        "--granularity-minutes",
        "collect",
        "check",
        "plot",
    ] {
        assert!(stdout.contains(needle), "--help lacks {needle}: {stdout}");
    }
    let (_, output) = in_temp(&["collect", "--help"]);
    assert_exit(&output, 0);
    assert!(text(&output).0.contains("--range-hours"));
}

#[test]
fn missing_accounts_file_is_exit_2_with_the_path_and_nothing_created() {
    let (dir, output) = in_temp(&["--out-dir", "reports"]);
    assert_exit(&output, 2);
    let (stdout, stderr) = text(&output);
    assert!(
        stderr.contains("accounts file not found: accounts.yaml"),
        "{stderr}"
    );
    assert!(stderr.contains("--accounts PATH"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!dir.path().join("reports").exists());
}

#[test]
fn malformed_yaml_is_exit_2_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accounts.yaml"),
        "- Account ID: '123456789012'\n  region: [oops\n",
    )
    .unwrap();
    let output = run(mvl(&[]).current_dir(dir.path()));
    assert_exit(&output, 2);
    let (_, stderr) = text(&output);
    assert!(stderr.contains("accounts.yaml:"), "{stderr}");
    assert!(stderr.contains("not a valid accounts file"), "{stderr}");
}

#[test]
fn a_bad_entry_names_entry_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accounts.yaml"),
        "- Account ID: '123456789012'\n- Account ID: '123456789013'\n  aws_access_key_id: AKIAIOSFODNN7EXAMPLE\n",
    )
    .unwrap();
    let output = run(mvl(&[]).current_dir(dir.path()));
    assert_exit(&output, 2);
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("accounts.yaml:2: entry 2 (account 123456789013): `aws_access_key_id` is set but `aws_secret_access_key` is missing"),
        "{stderr}"
    );
}

#[test]
fn duplicate_and_empty_files_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dup.yaml"),
        "- Account ID: '123456789012'\n- Account ID: 123456789012\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.yaml"), "").unwrap();
    let output = run(mvl(&["--accounts", "dup.yaml"]).current_dir(dir.path()));
    assert_exit(&output, 2);
    assert!(text(&output).1.contains("listed twice"));
    let output = run(mvl(&["--accounts", "empty.yaml"]).current_dir(dir.path()));
    assert_exit(&output, 2);
    assert!(text(&output).1.contains("has no entries"));
}

#[test]
fn bad_flags_are_exit_2() {
    for args in [
        &["--end", "yesterday"][..],
        &["--granularity-minutes", "0"],
        &["--range-hours", "abc"],
        &["--no-such-flag"],
        &["collect", "--endpoint-url", "localhost:4566"],
        &["check", "--max-workers", "0"],
    ] {
        let (_, output) = in_temp(args);
        assert_exit(&output, 2);
        assert!(!text(&output).1.is_empty(), "{args:?} printed no error");
    }
    let (_, output) = in_temp(&["--end", "yesterday"]);
    assert!(
        text(&output)
            .1
            .contains("--end \"yesterday\" is not an RFC 3339 time")
    );
}

#[test]
fn plot_renders_a_csv_and_rejects_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("m.csv");
    std::fs::write(
        &csv,
        "account_id,county,timestamp,avg_mvl_metric\n\
         123456789012,Palm Beach,2026-12-02T15:00:00Z,0.9312\n\
         123456789012,Palm Beach,2026-12-02T16:00:00Z,0.7741\n\
         123456789012,\"Lee, \"\"North\"\"\",2026-12-02T15:00:00Z,0.5000\n",
    )
    .unwrap();
    let output = run(&mut mvl(&["plot", csv.to_str().unwrap()]));
    assert_exit(&output, 0);
    let png = dir.path().join("m.png");
    assert!(
        text(&output)
            .0
            .contains(&format!("Visualization saved to {}", png.display()))
    );
    let (w, h, dpi) = png_info(&png);
    assert_eq!((w, h), (4800, 2400));
    assert!((dpi - 300.0).abs() < 0.01);
    // Plotting again replaces the PNG it was told to write (collect, by contrast, never overwrites).
    std::fs::write(&png, b"stale").unwrap();
    let output = run(&mut mvl(&["plot", csv.to_str().unwrap()]));
    assert_exit(&output, 0);
    assert_eq!(png_info(&png).0, 4800);

    std::fs::write(
        &csv,
        "account_id,county,timestamp,avg_mvl_metric\n1,A,noon,0.5\n",
    )
    .unwrap();
    let output = run(&mut mvl(&[
        "plot",
        csv.to_str().unwrap(),
        "-o",
        dir.path().join("x.png").to_str().unwrap(),
    ]));
    assert_exit(&output, 1);
    assert!(
        text(&output).1.contains("m.csv:2: timestamp \"noon\""),
        "{}",
        text(&output).1
    );
    assert!(!dir.path().join("x.png").exists());

    let output = run(&mut mvl(&[
        "plot",
        dir.path().join("none.csv").to_str().unwrap(),
    ]));
    assert_exit(&output, 1);
    assert!(text(&output).1.contains("none.csv"));
}

#[test]
fn an_unwritable_output_directory_is_fatal_before_any_query() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accounts.yaml"),
        "- Account ID: '123456789012'\n  log_group: /g\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let output = run(mvl(&[
        "--out-dir",
        "file/sub",
        "--endpoint-url",
        "http://127.0.0.1:9",
    ])
    .current_dir(dir.path()));
    assert_exit(&output, 1);
    assert!(
        text(&output)
            .1
            .contains("cannot create output directory file/sub"),
        "{}",
        text(&output).1
    );
}
