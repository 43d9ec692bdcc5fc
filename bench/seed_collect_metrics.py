#!/usr/bin/env python3
"""Re-implementation of the seed script `collect_metrics.py`, for benchmarking only.

The original source is not available; this follows its README (shared/seed) step by step:

* load ``accounts.yaml`` (a YAML list of {"Account ID", username, password,
  aws_access_key_id, aws_secret_access_key});
* one boto3 Session per account, region us-east-1, accounts processed by a
  ThreadPoolExecutor(max_workers=6);
* per account: CloudFormation DescribeStacks(StackName="elephant-oracle-node") ->
  output ``WorkflowMirrorValidatorLogGroupName``; then 24 *sequential* one-hour windows
  (hour_offset 0..23, aligned to the hour, covering the last 24 hours), each one
  StartQuery with the README's query (no ``bin()``), then GetQueryResults polled every
  second until the query is Complete/Failed/Cancelled;
* rows (account_id, county, timestamp, avg_mvl_metric) -> pandas -> CSV
  ``metrics_YYYYMMDD_HHMMSS.csv`` (timestamp = the window's end, as the
  test bed's ground truth writes it; the README does not say which) and a seaborn line plot (one line per account+county,
  16x8 in, 300 dpi) ``metrics_YYYYMMDD_HHMMSS.png``.

Deviations from the seed, all needed to point it at the local test bed:

* ``aws_session_token`` is passed to the Session when the accounts entry has one (the
  test bed's temporary keys need it);
* the endpoint comes from the environment variable AWS_ENDPOINT_URL (boto3 >= 1.28.57
  honours it natively; it is passed explicitly as well so older boto3 works too);
* flags ``--accounts``, ``--out-dir`` and ``--end`` (RFC 3339; default: now) so the bench
  can fix the input, output folder and clock. Defaults behave like the seed.
"""

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timedelta, timezone

import boto3
import yaml

ACCOUNTS_FILE = "accounts.yaml"  # Path to accounts file
REGION = "us-east-1"  # AWS region
STACK_NAME = "elephant-oracle-node"  # CloudFormation stack name
LOG_GROUP_OUTPUT_KEY = "WorkflowMirrorValidatorLogGroupName"  # CF output key
MAX_WORKERS = 6  # Number of parallel threads
HOURS = 24  # last 24 hours, one query per hour
POLL_INTERVAL_SECONDS = 1

QUERY = """fields
    message.county as county,
    message.global_completeness as completeness,
    message.msg as msg
| filter msg = "mvl_completeness_metric"
| stats avg(completeness) as avg_global_completeness by county"""

TERMINAL_STATUSES = {"Complete", "Failed", "Cancelled", "Timeout"}


def parse_args():
    p = argparse.ArgumentParser(description="Collect MVL completeness metrics (seed re-implementation)")
    p.add_argument("--accounts", default=ACCOUNTS_FILE, help="accounts YAML file (default: accounts.yaml)")
    p.add_argument("--out-dir", default=".", help="folder for the CSV and PNG (default: current folder)")
    p.add_argument("--end", default=None, help="RFC 3339 instant used as 'now' (default: the clock)")
    return p.parse_args()


def parse_rfc3339(s):
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def fmt_z(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def load_accounts(path):
    if not os.path.exists(path):
        print(f"Error: accounts file not found: {path}")
        sys.exit(1)
    with open(path) as f:
        accounts = yaml.safe_load(f) or []
    print(f"Loaded {len(accounts)} accounts from {path}")
    return accounts


def make_session(account):
    kwargs = dict(
        aws_access_key_id=account["aws_access_key_id"],
        aws_secret_access_key=account["aws_secret_access_key"],
        region_name=REGION,
    )
    # Deviation: the test bed hands out temporary keys that need their session token.
    if account.get("aws_session_token"):
        kwargs["aws_session_token"] = account["aws_session_token"]
    return boto3.Session(**kwargs)


def client(session, service):
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        return session.client(service, endpoint_url=endpoint)
    return session.client(service)


def get_log_group_name(cfn, account_id):
    try:
        resp = cfn.describe_stacks(StackName=STACK_NAME)
    except Exception as e:  # noqa: BLE001 - mirror the seed's broad error handling
        print(f"Failed to describe stack {STACK_NAME} in account {account_id}: {e}")
        return None
    for stack in resp.get("Stacks", []):
        for output in stack.get("Outputs", []) or []:
            if output.get("OutputKey") == LOG_GROUP_OUTPUT_KEY:
                return output.get("OutputValue")
    print(f"Output {LOG_GROUP_OUTPUT_KEY} not found in stack {STACK_NAME} for account {account_id}")
    return None


def run_query(logs, log_group, start, end, account_id):
    try:
        resp = logs.start_query(
            logGroupName=log_group,
            startTime=int(start.timestamp()),
            endTime=int(end.timestamp()),
            queryString=QUERY,
        )
    except Exception as e:  # noqa: BLE001
        print(f"  Failed to start query for account {account_id}: {e}")
        return []
    query_id = resp["queryId"]
    while True:
        result = logs.get_query_results(queryId=query_id)
        status = result.get("status")
        if status in TERMINAL_STATUSES:
            break
        time.sleep(POLL_INTERVAL_SECONDS)
    if status != "Complete":
        print(f"  Query {query_id} for account {account_id} ended with status {status}")
        return []
    return result.get("results", [])


def process_account(account, now):
    account_id = str(account["Account ID"])
    print(f"\n=== Processing account {account_id} ===")
    session = make_session(account)
    cfn = client(session, "cloudformation")
    logs = client(session, "logs")

    log_group = get_log_group_name(cfn, account_id)
    if not log_group:
        return []
    print(f"Account {account_id} using log group: {log_group}")

    rows = []
    end_of_last_hour = now.replace(minute=0, second=0, microsecond=0)
    for hour_offset in range(HOURS):
        window_end = end_of_last_hour - timedelta(hours=hour_offset)
        window_start = window_end - timedelta(hours=1)
        print(
            f"  Account {account_id} | hour_offset={hour_offset} | "
            f"window={fmt_z(window_start)} .. {fmt_z(window_end)}"
        )
        for record in run_query(logs, log_group, window_start, window_end, account_id):
            fields = {f["field"]: f.get("value") for f in record}
            value = fields.get("avg_global_completeness")
            if value is None:
                continue
            rows.append(
                {
                    "account_id": account_id,
                    "county": fields.get("county"),
                    "timestamp": window_end,
                    "avg_mvl_metric": float(value),
                }
            )
    return rows


def save_results(rows, out_dir):
    # Imported late, as a script that makes charts usually does; the import cost is part of the run.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    os.makedirs(out_dir, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    csv_path = os.path.join(out_dir, f"metrics_{stamp}.csv")
    png_path = os.path.join(out_dir, f"metrics_{stamp}.png")

    df = pd.DataFrame(rows, columns=["account_id", "county", "timestamp", "avg_mvl_metric"])
    df = df.sort_values(["account_id", "county", "timestamp"]).reset_index(drop=True)
    out = df.copy()
    out["timestamp"] = out["timestamp"].map(fmt_z)
    out.to_csv(csv_path, index=False)
    print(f"\nResults saved to {csv_path}")

    if df.empty:
        print("No data to plot")
        return
    df["series"] = df["account_id"] + " - " + df["county"].astype(str)
    plt.figure(figsize=(16, 8))
    sns.lineplot(data=df, x="timestamp", y="avg_mvl_metric", hue="series", marker="o")
    plt.title("MVL completeness metric by account and county (last 24 hours)")
    plt.xlabel("Time (UTC)")
    plt.ylabel("avg_mvl_metric")
    plt.xticks(rotation=45)
    plt.legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize="small")
    plt.tight_layout()
    plt.savefig(png_path, dpi=300)
    plt.close()
    print(f"Visualization saved to {png_path}")


def main():
    args = parse_args()
    now = parse_rfc3339(args.end) if args.end else datetime.now(timezone.utc)
    accounts = load_accounts(args.accounts)

    all_rows = []
    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        futures = {pool.submit(process_account, acc, now): acc for acc in accounts}
        for fut in as_completed(futures):
            acc = futures[fut]
            try:
                all_rows.extend(fut.result())
            except Exception as e:  # noqa: BLE001
                print(f"Error processing account {acc.get('Account ID')}: {e}")

    save_results(all_rows, args.out_dir)


if __name__ == "__main__":
    main()
