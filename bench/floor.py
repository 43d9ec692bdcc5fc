#!/usr/bin/env python3
"""The floor: the least work any collector must do against the test bed.

Before the timer starts it builds one boto3 logs client per account (keys from the accounts
file) and finds each account's log group (from seed.json when given and it names them, else
by CloudFormation DescribeStacks). Then it starts the timer, starts ONE binned Logs Insights
query per account, all at once (one thread per account, released together by a barrier),
polls each query every 100 ms until it is Complete, stops the timer when every query is
complete, and prints the elapsed seconds (the last line of stdout is the bare number).
It writes no files.
"""

import argparse
import json
import os
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import boto3
import yaml
from botocore.config import Config

REGION = "us-east-1"
STACK_NAME = "elephant-oracle-node"
LOG_GROUP_OUTPUT_KEY = "WorkflowMirrorValidatorLogGroupName"
POLL_SECONDS = 0.1
QUERY = (
    "fields message.county as county, message.global_completeness as completeness, "
    "message.msg as msg | filter msg = \"mvl_completeness_metric\" | "
    "stats avg(completeness) as avg_global_completeness by county, bin(1h) | limit 10000"
)


def parse_rfc3339(s):
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def log_groups_from_seed_json(path):
    """seed.json of the test bed: {"accounts": [{"id", "log_group", "has_stack", ...}]}; None if unusable."""
    try:
        with open(path) as f:
            data = json.load(f)
        return {
            str(a["id"]): a["log_group"]
            for a in data["accounts"]
            if a.get("has_stack", True) and isinstance(a.get("log_group"), str)
        } or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", required=True)
    p.add_argument("--seed-json", default=None, help="seed.json of the test bed (optional)")
    p.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    p.add_argument("--end", default=None, help="RFC 3339 end of the range (default: now); floored to the hour")
    p.add_argument("--range-hours", type=int, default=24)
    args = p.parse_args()

    end = parse_rfc3339(args.end) if args.end else datetime.now(timezone.utc)
    end = end.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=args.range_hours)
    start_s, end_s = int(start.timestamp()), int(end.timestamp()) - 1  # [start, end)

    with open(args.accounts) as f:
        accounts = yaml.safe_load(f) or []

    seed_groups = log_groups_from_seed_json(args.seed_json) if args.seed_json else None
    cfg = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=4)
    jobs = []  # (account_id, logs client, log group)
    for acc in accounts:
        account_id = str(acc["Account ID"])
        session = boto3.Session(
            aws_access_key_id=acc["aws_access_key_id"],
            aws_secret_access_key=acc["aws_secret_access_key"],
            aws_session_token=acc.get("aws_session_token") or None,
            region_name=REGION,
        )
        logs = session.client("logs", endpoint_url=args.endpoint_url, config=cfg)
        log_group = (seed_groups or {}).get(account_id)
        if log_group is None:
            cfn = session.client("cloudformation", endpoint_url=args.endpoint_url, config=cfg)
            stacks = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"]
            log_group = next(
                o["OutputValue"]
                for s in stacks
                for o in s.get("Outputs", [])
                if o["OutputKey"] == LOG_GROUP_OUTPUT_KEY
            )
        jobs.append((account_id, logs, log_group))

    barrier = threading.Barrier(len(jobs) + 1)
    rows = [0] * len(jobs)
    errors = []

    def worker(i, logs, log_group):
        barrier.wait()
        try:
            qid = logs.start_query(
                logGroupName=log_group, startTime=start_s, endTime=end_s, queryString=QUERY
            )["queryId"]
            while True:
                r = logs.get_query_results(queryId=qid)
                if r["status"] == "Complete":
                    rows[i] = len(r.get("results", []))
                    return
                if r["status"] in ("Failed", "Cancelled", "Timeout"):
                    errors.append(f"query {qid}: {r['status']}")
                    return
                time.sleep(POLL_SECONDS)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [
        threading.Thread(target=worker, args=(i, logs, lg), daemon=True)
        for i, (_, logs, lg) in enumerate(jobs)
    ]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0

    print(f"floor: {len(jobs)} accounts, {sum(rows)} rows, {len(errors)} errors", file=sys.stderr)
    for e in errors[:5]:
        print(f"floor error: {e}", file=sys.stderr)
    print(f"{elapsed:.3f}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
