//! Helpers for the end-to-end tests: the local test bed (a moto server on 127.0.0.1, see testbed/),
//! seeding it, running the mvl-monitor binary against it, and comparing CSVs readably.
//!
//! Every test starts its own server on a free port, so tests run in parallel and a fault switch in one
//! test never leaks into another. The server is stopped when the [`TestBed`] is dropped, also when the
//! test fails; the server also exits by itself when its parent process goes away.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mvl-monitor");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the test bed's virtualenv (scripts/setup-testbed.sh makes it).
pub fn python() -> PathBuf {
    let path = std::env::var_os("MVL_TESTBED_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "the test bed is not installed ({} is missing): run scripts/test.sh, or scripts/setup-testbed.sh first",
        path.display()
    );
    path
}

pub struct TestBed {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl TestBed {
    /// Starts a server with the given switches (`--query-latency 0.2`, `--throttle-every 3`, ...).
    pub fn start(switches: &[&str]) -> TestBed {
        let dir = tempfile::tempdir().expect("temp dir");
        let port_file = dir.path().join("port");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let child = Command::new(python())
            .args(["-m", "mvl_testbed.server", "--port-file"])
            .arg(&port_file)
            .args(switches)
            .env("PYTHONPATH", root().join("testbed"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the test bed server");
        let mut bed = TestBed {
            child,
            port: 0,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse()
            {
                bed.port = port;
                break;
            }
            if let Ok(Some(status)) = bed.child.try_wait() {
                panic!("test bed server exited with {status}: {}", bed.server_log());
            }
            assert!(
                Instant::now() < deadline,
                "test bed server did not start: {}",
                bed.server_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bed
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Seeds accounts, stacks and log events; returns the directory with accounts.yaml, ground truth
    /// CSVs and seed.json.
    pub fn seed(&self, args: &[&str]) -> PathBuf {
        let out = self.dir.path().join(format!("seed-{}", fastrand_suffix()));
        let output = Command::new(python())
            .args([
                "-m",
                "mvl_testbed.seed",
                "--endpoint",
                &self.endpoint(),
                "--out-dir",
            ])
            .arg(&out)
            .args(args)
            .env("PYTHONPATH", root().join("testbed"))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .expect("run the seeder");
        assert!(
            output.status.success(),
            "seeding failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.server_log()
        );
        out
    }

    /// GET a test bed path (e.g. /_testbed/stats) and parse the JSON body.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("bad JSON from {path}: {e}: {response}"))
    }

    pub fn stats(&self) -> serde_json::Value {
        self.get_json("/_testbed/stats")
    }

    /// How many requests of `service:Action` the server saw.
    pub fn requests(&self, action: &str) -> u64 {
        self.stats()["requests"][action].as_u64().unwrap_or(0)
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fastrand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// A command for the mvl-monitor binary with a clean AWS environment: no real credentials, no shared
/// config files, no instance metadata lookups (which would leave 127.0.0.1).
pub fn mvl(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null());
    for var in [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "MVL_MONITOR_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_CONFIG_FILE", "/nonexistent/mvl-monitor-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/mvl-monitor-test/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// Runs a command and returns its output, with stdout and stderr in the panic message on surprise.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run mvl-monitor")
}

pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn assert_exit(output: &Output, code: i32) {
    let (stdout, stderr) = text(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit status\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

/// The single file in `dir` with extension `ext`.
pub fn only_file(dir: &Path, ext: &str) -> PathBuf {
    let files: Vec<PathBuf> = files_in(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "expected one .{ext} in {}: {files:?}",
        dir.display()
    );
    files[0].clone()
}

pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => vec![],
    }
}

type Key = (String, String, String);

fn read_csv(path: &Path) -> (Vec<String>, BTreeMap<Key, String>) {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("record");
        let key = (
            record[0].to_string(),
            record[1].to_string(),
            record[2].to_string(),
        );
        assert!(
            rows.insert(key.clone(), record[3].to_string()).is_none(),
            "duplicate row {key:?} in {}",
            path.display()
        );
    }
    (header, rows)
}

/// Asserts that `actual` holds exactly the rows of `expected` (the seeder's ground truth, computed from
/// the events it generated with exact decimal means, rounded half to even), value for value, and in
/// order. Prints a readable diff on failure.
pub fn assert_csv_matches(actual: &Path, expected: &Path) {
    let (header_a, rows_a) = read_csv(actual);
    let (header_e, rows_e) = read_csv(expected);
    assert_eq!(
        header_a,
        ["account_id", "county", "timestamp", "avg_mvl_metric"]
    );
    assert_eq!(header_a, header_e);
    let mut diff = Vec::new();
    for (key, want) in &rows_e {
        match rows_a.get(key) {
            None => diff.push(format!("- missing {key:?} = {want}")),
            Some(got) if got != want => diff.push(format!("~ {key:?}: got {got}, want {want}")),
            Some(_) => {}
        }
    }
    for key in rows_a.keys().filter(|k| !rows_e.contains_key(*k)) {
        diff.push(format!("+ unexpected {key:?} = {}", rows_a[key]));
    }
    assert!(
        diff.is_empty(),
        "{} differs from ground truth {} ({} vs {} rows):\n{}",
        actual.display(),
        expected.display(),
        rows_a.len(),
        rows_e.len(),
        diff.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(!rows_e.is_empty() || rows_a.is_empty());
    // Rows are sorted by account, county, time.
    let mut reader = csv::Reader::from_path(actual).expect("csv");
    let order: Vec<Key> = reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            (r[0].to_string(), r[1].to_string(), r[2].to_string())
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(
        order, sorted,
        "rows are not sorted by account, county, time"
    );
}

/// A copy of the seed's hourly ground truth keeping only the rows of the accounts `keep` accepts.
pub fn ground_truth_where(seed: &Path, keep: impl Fn(&str) -> bool) -> PathBuf {
    let truth = std::fs::read_to_string(seed.join("ground_truth_60.csv")).expect("ground truth");
    let mut lines = truth.lines();
    let mut text = format!("{}\n", lines.next().unwrap_or_default());
    for line in lines.filter(|l| keep(l.split(',').next().unwrap_or_default())) {
        text.push_str(line);
        text.push('\n');
    }
    let path = seed.join(format!(
        "ground_truth_60-filtered-{}.csv",
        fastrand_suffix()
    ));
    std::fs::write(&path, text).expect("write");
    path
}

/// Runs `mvl-monitor check` on `accounts` against the bed.
pub fn check(bed: &TestBed, accounts: &Path) -> Output {
    run(&mut mvl(&[
        "check",
        "--accounts",
        accounts.to_str().expect("utf-8 path"),
        "--endpoint-url",
        &bed.endpoint(),
    ]))
}

/// Width, height and DPI of a PNG (from its pHYs chunk).
pub fn png_info(path: &Path) -> (u32, u32, f64) {
    let file = std::fs::File::open(path).expect("png");
    let reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("valid PNG");
    let info = reader.info();
    let dims = info.pixel_dims.expect("pHYs chunk");
    assert_eq!(dims.unit, png::Unit::Meter);
    (info.width, info.height, f64::from(dims.xppu) * 0.0254)
}

/// A recent hour boundary as RFC 3339: the end of the seeded range (logs older than 14 days or in
/// the future cannot be ingested, so the bed works relative to now).
pub fn recent_end() -> String {
    recent_boundary(3600)
}

/// Same, at a day boundary.
pub fn recent_midnight() -> String {
    recent_boundary(86_400)
}

fn recent_boundary(every_seconds: i64) -> String {
    let now = jiff::Timestamp::now().as_second();
    let boundary = jiff::Timestamp::from_second(now - now.rem_euclid(every_seconds)).expect("time");
    mvl_monitor::window::format_utc(boundary)
}
