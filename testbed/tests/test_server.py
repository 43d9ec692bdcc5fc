"""End-to-end test of the real test bed server process, driven with boto3 and the seeder.

Why this exists: the unit tests cover the evaluator; this covers everything wired around it in
the server process (moto patching, query lifecycle, fault switches, /_testbed endpoints,
multi-account attribution via AssumeRole, shutdown) and checks that the seeder's ground truth
agrees with what a query returns.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

TESTBED = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(TESTBED)}
LATENCY = 1.0
MVL_QUERY = """fields message.county as county, message.global_completeness as completeness, message.msg as msg
| filter msg = "mvl_completeness_metric"
| stats avg(completeness) as avg_global_completeness by county, bin({bin})
| limit 10000"""
NO_RETRIES = Config(retries={"total_max_attempts": 1})


def wait_for_port(path: Path, process: subprocess.Popen, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "server exited during startup"
        assert time.monotonic() < deadline, "server did not write its port file"
        time.sleep(0.05)
    return int(path.read_text())


def http_json(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())


def is_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.startswith("State:") and "Z" in line for line in status)
    except FileNotFoundError:
        return True


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port_file = tmp_path_factory.mktemp("server") / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "mvl_testbed.server", "--port-file", str(port_file),
         "--query-latency", str(LATENCY)],
        env=ENV,
    )
    try:
        port = wait_for_port(port_file, process)
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def seeded(server, tmp_path_factory):
    _, endpoint = server
    out = tmp_path_factory.mktemp("seed")
    now = int(time.time())
    end = datetime.fromtimestamp(now - now % 3600, tz=timezone.utc)
    subprocess.run(
        [sys.executable, "-m", "mvl_testbed.seed", "--endpoint", endpoint, "--out-dir", str(out),
         "--accounts", "3", "--counties", "4", "--hours", "6", "--end", end.strftime("%Y-%m-%dT%H:%M:%SZ"),
         "--granularity", "60", "--granularity", "15", "--no-stack", "2"],
        env=ENV, check=True, timeout=300,
    )
    return out, int(end.timestamp())


def clients(endpoint: str, account: dict, *services: str):
    session = boto3.session.Session(
        region_name="us-east-1",
        aws_access_key_id=account["aws_access_key_id"],
        aws_secret_access_key=account["aws_secret_access_key"],
        aws_session_token=account["aws_session_token"],
    )
    return [session.client(s, endpoint_url=endpoint, config=NO_RETRIES) for s in services]


def wait_done(logs, query_id: str) -> dict:
    deadline = time.monotonic() + 30
    while (response := logs.get_query_results(queryId=query_id))["status"] in ("Scheduled", "Running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return response


def as_ground_truth(response: dict, bin_text: str, minutes: int) -> dict:
    """Query rows -> {(county, window end): mean rounded to 4 decimals} like ground_truth_G.csv."""
    rows = {}
    for row in response["results"]:
        cells = {c["field"]: c["value"] for c in row}
        start = datetime.strptime(cells[f"bin({bin_text})"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
        end = datetime.fromtimestamp(start.timestamp() + minutes * 60, tz=timezone.utc)
        # averages are floats ("0.8310500000000001" for an exact 0.83105): drop the float noise
        # first, then round half-even, as the ground truth does on the exact mean
        exact = Decimal(cells["avg_global_completeness"]).quantize(Decimal("1e-10"))
        value = exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
        rows[(cells["county"], end.strftime("%Y-%m-%dT%H:%M:%SZ"))] = str(value)
    return rows


def test_seeded_accounts_queries_and_switches(server, seeded):
    _, endpoint = server
    out, end = seeded
    accounts = yaml.safe_load((out / "accounts.yaml").read_text())
    summary = json.loads((out / "seed.json").read_text())
    assert [a["Account ID"] for a in accounts] == ["100000000001", "100000000002", "100000000003"]
    assert [a["has_stack"] for a in summary["accounts"]] == [True, True, False]

    # multi-account: AssumeRole credentials act in the role's account, where the stack lives
    sts, cloudformation, logs = clients(endpoint, accounts[0], "sts", "cloudformation", "logs")
    assert sts.get_caller_identity()["Account"] == "100000000001"
    outputs = cloudformation.describe_stacks(StackName="elephant-oracle-node")["Stacks"][0]["Outputs"]
    log_group = {o["OutputKey"]: o["OutputValue"] for o in outputs}["WorkflowMirrorValidatorLogGroupName"]
    assert log_group == "/aws/lambda/mvl-validator-100000000001"
    groups = logs.describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [log_group]
    other_cloudformation, other_logs = clients(endpoint, accounts[2], "cloudformation", "logs")
    with pytest.raises(ClientError):  # account 3 was seeded without the stack
        other_cloudformation.describe_stacks(StackName="elephant-oracle-node")
    with pytest.raises(ClientError) as error:  # and cannot see account 1's log group
        other_logs.start_query(logGroupName=log_group, startTime=end - 3600, endTime=end - 1, queryString="stats count(*)")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # lifecycle Scheduled -> Running -> Complete, and results equal to the seeder's ground truth
    for minutes, bin_text in ((60, "1h"), (15, "15m")):
        started = time.monotonic()
        query_id = logs.start_query(
            logGroupName=log_group, startTime=end - 6 * 3600, endTime=end - 1,
            queryString=MVL_QUERY.format(bin=bin_text), limit=10000,
        )["queryId"]
        assert logs.get_query_results(queryId=query_id)["status"] == "Scheduled"
        assert logs.get_query_results(queryId=query_id)["status"] == "Running"
        response = wait_done(logs, query_id)
        assert response["status"] == "Complete"
        assert time.monotonic() - started >= LATENCY
        with open(out / f"ground_truth_{minutes}.csv") as handle:
            truth = {(r["county"], r["timestamp"]): r["avg_mvl_metric"]
                     for r in csv.DictReader(handle) if r["account_id"] == "100000000001"}
        assert len(truth) == 4 * 6 * 60 // minutes
        assert as_ground_truth(response, bin_text, minutes) == truth
        # 4 counties x 24 quarter hours x 2 events, plus the one on a window boundary
        assert response["statistics"]["recordsMatched"] == 4 * 24 * 2 + 1

    # the metric event written exactly at `end` is in the query only if endTime includes it
    response = wait_done(logs, logs.start_query(
        logGroupName=log_group, startTime=end - 6 * 3600, endTime=end, queryString=MVL_QUERY.format(bin="1h"),
    )["queryId"])
    assert response["statistics"]["recordsMatched"] == 4 * 24 * 2 + 2

    # StopQuery cancels a running query and is recorded
    query_id = logs.start_query(logGroupName=log_group, startTime=end - 3600, endTime=end - 1,
                                queryString="stats count(*)")["queryId"]
    assert logs.stop_query(queryId=query_id)["success"] is True
    assert logs.get_query_results(queryId=query_id)["status"] == "Cancelled"
    stats = http_json(f"{endpoint}/_testbed/stats")
    assert query_id in stats["stopped_queries"]
    recorded = {q["queryId"]: q for q in stats["queries"]}[query_id]
    assert recorded["status"] == "Cancelled"
    assert (recorded["account"], recorded["logGroup"], recorded["startTime"], recorded["endTime"]) == (
        "100000000001", log_group, end - 3600, end - 1)

    # throttling: every 2nd StartQuery server-wide fails with LimitExceededException
    assert http_json(f"{endpoint}/_testbed/config", {"throttle_every": 2})["throttle_every"] == 2
    outcomes = []
    for _ in range(4):
        try:
            logs.start_query(logGroupName=log_group, startTime=end - 3600, endTime=end - 1, queryString="stats count(*)")
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    assert sorted(outcomes) == ["LimitExceededException"] * 2 + ["ok"] * 2
    assert outcomes[0] != outcomes[1] and outcomes[0] == outcomes[2]
    http_json(f"{endpoint}/_testbed/config", {"throttle_every": 0})

    # a failing account: its queries end Failed, without results
    http_json(f"{endpoint}/_testbed/config", {"fail_accounts": ["100000000002"]})
    (second_logs,) = clients(endpoint, accounts[1], "logs")
    response = wait_done(second_logs, second_logs.start_query(
        logGroupName="/aws/lambda/mvl-validator-100000000002", startTime=end - 3600, endTime=end - 1,
        queryString=MVL_QUERY.format(bin="1h"))["queryId"])
    assert (response["status"], response["results"]) == ("Failed", [])
    http_json(f"{endpoint}/_testbed/config", {"fail_accounts": []})

    requests = http_json(f"{endpoint}/_testbed/stats")["requests"]
    assert requests["sts:AssumeRole"] == 3
    assert requests["logs:StartQuery"] == 10
    assert requests["logs:StopQuery"] == 1
    assert requests["cloudformation:DescribeStacks"] >= 3


def test_request_delay_overlaps_across_concurrent_requests(server):
    from concurrent.futures import ThreadPoolExecutor

    _, endpoint = server
    http_json(f"{endpoint}/_testbed/config", {"request_delay": 0.5})
    try:
        sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing", config=NO_RETRIES)
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            accounts = list(pool.map(lambda _: sts.get_caller_identity()["Account"], range(4)))
        elapsed = time.monotonic() - started
    finally:
        http_json(f"{endpoint}/_testbed/config", {"request_delay": 0})
    assert accounts == ["123456789012"] * 4  # default credentials
    assert 0.5 <= elapsed < 1.5


def test_exits_on_sigterm_and_when_its_parent_dies(tmp_path):
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "mvl_testbed.server", "--port-file", str(port_file)], env=ENV
    )
    wait_for_port(port_file, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=5) == 0

    orphan_port_file = tmp_path / "orphan-port"
    parent = subprocess.Popen(
        ["sh", "-c", f'"{sys.executable}" -m mvl_testbed.server --port-file "{orphan_port_file}" & echo $!; wait'],
        env=ENV, stdout=subprocess.PIPE, text=True,
    )
    pid = int(parent.stdout.readline())
    try:
        wait_for_port(orphan_port_file, parent)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while not is_gone(pid):
            assert time.monotonic() < deadline, "server outlived its parent"
            time.sleep(0.1)
    finally:
        if not is_gone(pid):
            os.kill(pid, signal.SIGKILL)
