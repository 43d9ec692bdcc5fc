"""Seed a running test bed server with many accounts of mirror-validator Lambda logs.

Why this exists: mvl-monitor's end-to-end tests need N accounts, each with the CloudFormation
stack `elephant-oracle-node` pointing at a log group full of realistic Lambda JSON log events,
plus the exact answer mvl-monitor should produce.  This module creates that data through the
AWS APIs (so resources land in the right moto account via STS AssumeRole credentials) and
writes, computed straight from the generated events (not via the query evaluator):
  accounts.yaml           credentials per account, in the seed file format mvl-monitor reads
  ground_truth_<G>.csv    account_id,county,timestamp,avg_mvl_metric per G-minute window
  seed.json               what was created, including the events deliberately left out

Usage: python -m mvl_testbed.seed --endpoint http://127.0.0.1:PORT --out-dir DIR --accounts N
       --counties C --hours H --end RFC3339 [--granularity MINUTES ...] [--no-stack INDEX ...]
       [--no-events INDEX ...] [--events-per-window K] [--region R] [--account-base B] [--seed S]
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import random
import re
import sys
import time
import uuid
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

STACK_NAME = "elephant-oracle-node"
OUTPUT_KEY = "WorkflowMirrorValidatorLogGroupName"
ROLE_NAME = "mvl-testbed"
METRIC_MSG = "mvl_completeness_metric"
HOUR_MS = 3_600_000
# PutLogEvents limits: events per call, bytes per call (message + 26 each), time span per call
BATCH_EVENTS, BATCH_BYTES, BATCH_SPAN_MS = 10_000, 1_048_576, 24 * HOUR_MS
# what moto (like AWS) accepts relative to now; older or newer events are silently dropped
MAX_AGE_MS, MAX_AHEAD_MS = 14 * 24 * HOUR_MS, 2 * HOUR_MS

# Real county names first (spaces, dots, hyphens), then generated ones.
COUNTY_NAMES = [
    "Palm Beach", "St. Lucie", "Miami-Dade", "Santa Rosa", "De Soto", "Indian River",
    "St. Johns", "Broward", "Hillsborough", "Pinellas", "Orange", "Duval", "Lee", "Polk",
    "Brevard", "Volusia", "Pasco", "Seminole", "Sarasota", "Manatee", "Collier", "Marion",
    "Osceola", "Lake", "Escambia", "Okaloosa", "Alachua", "Leon", "St. Lucie West", "Bay",
]


def county_names(count: int) -> list[str]:
    names = COUNTY_NAMES[:count]
    return names + [f"County {n:03d}" for n in range(len(names) + 1, count + 1)]


def iso_ms(ms: int) -> str:
    """Epoch ms as the Lambda writes timestamps: 2026-12-02T14:02:59.240Z."""
    moment = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_s(ms: int) -> str:
    """Epoch ms (whole seconds) as the ground truth writes window ends: 2026-12-02T15:00:00Z."""
    return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--end needs a UTC offset or Z: {text!r}")
    return round(moment.timestamp() * 1000)


@dataclass
class Metric:
    county: str
    timestamp_ms: int
    value: float


@dataclass
class AccountData:
    """The events generated for one account and the metric events among them."""

    events: list[tuple[int, str]] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)  # inside [end - hours, end)
    excluded: list[Metric] = field(default_factory=list)  # at `end`: a correct client drops them


class EventFactory:
    """Builds log event messages in the exact shape of the Lambda's JSON log format."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def request_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def app_log(self, ms: int, county: str, msg: str, level: str = "info", **extra: Any) -> str:
        inner = {
            "component": "mirror-validator",
            "at": iso_ms(ms - self.rng.randrange(50, 5000)),
            "county": county,
            "execution_id": f"exec-{self.rng.getrandbits(24):06x}",
            "level": level,
            "msg": msg,
            **extra,
        }
        outer = {"timestamp": iso_ms(ms), "level": level.upper(), "requestId": self.request_id(), "message": inner}
        return json.dumps(outer, separators=(",", ":"))

    def platform(self, ms: int, kind: str) -> str:
        record: dict[str, Any] = {"requestId": self.request_id()}
        if kind == "platform.start":
            record["version"] = "$LATEST"
        else:
            duration = round(self.rng.uniform(500, 9000), 1)
            record["metrics"] = {
                "durationMs": duration,
                "billedDurationMs": int(duration) + 1,
                "memorySizeMB": 1024,
                "maxMemoryUsedMB": self.rng.randrange(200, 400),
            }
            record["status"] = "success"
        return json.dumps({"time": iso_ms(ms), "type": kind, "record": record}, separators=(",", ":"))

    def value(self) -> float:
        return round(self.rng.uniform(0.5, 1.0), 4)


def generate_account(
    index: int, seed: int, counties: list[str], lo: int, hi: int, window_ms: int,
    coarsest_ms: int, per_window: int,
) -> AccountData:
    """Events for [lo, hi) plus one metric event exactly at hi (which must be excluded).

    Each epoch-aligned window of window_ms (clipped to [lo, hi)) gets, per county, per_window
    metric events at random times, and distractors that must not be counted.  One county gets
    an extra metric event exactly on a window start (preferably one aligned to coarsest_ms)."""
    rng = random.Random(f"{seed}:{index}")
    make = EventFactory(rng)
    data = AccountData()

    def metric(ms: int, county: str) -> Metric:
        value = make.value()
        data.events.append((ms, make.app_log(ms, county, METRIC_MSG, global_completeness=value)))
        return Metric(county, ms, value)

    starts = list(range(lo // window_ms * window_ms, hi, window_ms))
    for start in starts:
        a, b = max(start, lo), min(start + window_ms, hi)
        for county in counties:
            data.metrics += [metric(rng.randrange(a, b), county) for _ in range(per_window)]
        # one Lambda invocation's other records: similar numbers, none of which may be counted
        county = rng.choice(counties)
        value = make.value()
        t = sorted(rng.randrange(a, b) for _ in range(5))
        data.events += [
            (t[0], make.platform(t[0], "platform.start")),
            (t[1], make.app_log(t[1], county, "mvl_lambda_start",
                                input_s3_key=f"inputs/{county.lower().replace(' ', '-')}/input.csv")),
            (t[2], make.app_log(t[2], county, "mvl_completeness_below_threshold", level="error",
                                global_completeness=value, threshold=0.8)),
            (t[3], make.app_log(t[3], county, "mvl_lambda_complete", operation="mvl_lambda_total",
                                duration_ms=4247, duration_seconds="4.25", mvl_metric=value)),
            (t[4], make.platform(t[4], "platform.report")),
        ]

    boundaries = [s for s in starts if s >= lo]
    if boundaries:
        aligned = [s for s in boundaries if s % coarsest_ms == 0]
        data.metrics.append(metric(rng.choice(aligned or boundaries), counties[index % len(counties)]))
    data.excluded.append(metric(hi, rng.choice(counties)))
    data.events.sort(key=lambda event: event[0])
    return data


def batches(events: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Split time-sorted events into PutLogEvents-sized batches."""
    result: list[list[tuple[int, str]]] = []
    size = 0
    for event in events:
        event_size = len(event[1].encode("utf-8")) + 26
        current = result[-1] if result else None
        if (
            current is None
            or len(current) >= BATCH_EVENTS
            or size + event_size > BATCH_BYTES
            or event[0] - current[0][0] > BATCH_SPAN_MS
        ):
            result.append([])
            size = 0
        result[-1].append(event)
        size += event_size
    return result


def template(log_group: str) -> str:
    return json.dumps({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"ValidatorLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": log_group}}},
        "Outputs": {OUTPUT_KEY: {"Value": {"Ref": "ValidatorLogGroup"}}},
    })


@dataclass
class Account:
    index: int
    account_id: str
    has_stack: bool
    has_events: bool
    # filled in by seed_account
    credentials: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    excluded: list[Metric] = field(default_factory=list)
    events_written: int = 0

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/mvl-validator-{self.account_id}"


@functools.lru_cache(maxsize=None)
def _client_config() -> BotoConfig:
    # client-side validation of 10,000-event batches costs more than generating them
    return BotoConfig(retries={"max_attempts": 3, "mode": "standard"}, parameter_validation=False)


@functools.lru_cache(maxsize=None)
def _default_sts(endpoint: str, region: str) -> Any:
    """The STS client with the default ("testing") credentials, one per worker process."""
    return boto3.client(
        "sts", endpoint_url=endpoint, region_name=region, config=_client_config(),
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def seed_account(account: Account, args: argparse.Namespace, generate: dict[str, Any]) -> Account:
    """Create one account's stack/log group and events with that account's own credentials.

    Runs in a worker process; returns the account with credentials and metrics filled in."""
    sts = _default_sts(args.endpoint, args.region)
    role_arn = f"arn:aws:iam::{account.account_id}:role/{ROLE_NAME}"
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="mvl-testbed-seed", DurationSeconds=43200)["Credentials"]
    account.credentials = {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }
    session = boto3.session.Session(region_name=args.region, **account.credentials)
    client_config = _client_config()
    logs = session.client("logs", endpoint_url=args.endpoint, config=client_config)
    if account.has_stack:
        cloudformation = session.client("cloudformation", endpoint_url=args.endpoint, config=client_config)
        cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=template(account.log_group))
        outputs = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0].get("Outputs", [])
        if {o["OutputKey"]: o["OutputValue"] for o in outputs}.get(OUTPUT_KEY) != account.log_group:
            raise RuntimeError(f"account {account.account_id}: stack output {OUTPUT_KEY} is wrong: {outputs}")
    else:
        logs.create_log_group(logGroupName=account.log_group)
    day = datetime.fromtimestamp(generate["lo"] // 1000, tz=timezone.utc).strftime("%Y/%m/%d")
    stream = f"{day}/[$LATEST]{uuid.UUID(int=account.index + 1).hex}"
    logs.create_log_stream(logGroupName=account.log_group, logStreamName=stream)
    if not account.has_events:
        return account
    data = generate_account(account.index, **generate)
    for batch in batches(data.events):
        response = logs.put_log_events(
            logGroupName=account.log_group,
            logStreamName=stream,
            logEvents=[{"timestamp": ms, "message": message} for ms, message in batch],
        )
        if response.get("rejectedLogEventsInfo"):
            raise RuntimeError(
                f"account {account.account_id}: PutLogEvents rejected events "
                f"{response['rejectedLogEventsInfo']} (too old: > 14 days, or > 2 h in the future)"
            )
    account.metrics, account.excluded, account.events_written = data.metrics, data.excluded, len(data.events)
    return account


def ground_truth(accounts: list[Account], lo: int, hi: int, granularity_min: int) -> list[list[str]]:
    """Rows account_id,county,window end,mean (4 decimals, half-even on the exact mean)."""
    size = granularity_min * 60_000
    rows = []
    with localcontext() as context:
        context.prec = 50  # exact for means of 4-decimal values, ties included
        for account in accounts:
            if not (account.has_stack and account.has_events):
                continue
            # values have 4 decimals: sum them exactly as integers of 1/10000
            sums: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
            for m in account.metrics:
                if lo <= m.timestamp_ms < hi:
                    total = sums[(m.county, m.timestamp_ms // size * size)]
                    total[0] += round(m.value * 10_000)
                    total[1] += 1
            for (county, start), (units, count) in sums.items():
                mean = Decimal(units) / Decimal(count * 10_000)
                rounded = mean.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
                rows.append([account.account_id, county, start + size, f"{rounded:.4f}"])
    rows.sort(key=lambda r: (r[0], r[1].encode("utf-8"), r[2]))
    window_ends = {end: iso_s(end) for end in {r[2] for r in rows}}
    return [[a, c, window_ends[end], v] for a, c, end, v in rows]


_PLAIN_YAML = re.compile(r"[A-Za-z0-9][A-Za-z0-9/+=_.@-]*")


def yaml_scalar(text: str) -> str:
    return text if _PLAIN_YAML.fullmatch(text) else json.dumps(text)


def write_accounts_yaml(path: str, accounts: list[Account]) -> None:
    lines = []
    for account in accounts:
        n = account.index + 1
        lines += [
            f'- Account ID: "{account.account_id}"',
            f"  username: user{n}@example.com",
            f"  password: testbed-password-{n}",
            *(f"  {key}: {yaml_scalar(value)}" for key, value in account.credentials.items()),
        ]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mvl_testbed.seed", description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", required=True, help="http://127.0.0.1:PORT of the test bed server")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--counties", type=int, required=True)
    parser.add_argument("--hours", type=int, required=True)
    parser.add_argument("--end", type=parse_rfc3339, required=True, help="RFC 3339, e.g. 2026-12-02T15:00:00Z")
    parser.add_argument("--granularity", type=int, action="append", metavar="MINUTES",
                        help="ground truth window (repeatable; default 60); events fill the smallest")
    parser.add_argument("--no-stack", type=int, action="append", default=[], metavar="INDEX")
    parser.add_argument("--no-events", type=int, action="append", default=[], metavar="INDEX")
    parser.add_argument("--events-per-window", type=int, default=2, metavar="K")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account-base", type=int, default=100_000_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    args.granularity = sorted(set(args.granularity or [60]))
    if min(args.granularity) <= 0 or args.accounts < 1 or args.counties < 1 or args.hours < 1:
        parser.error("--accounts, --counties, --hours and --granularity must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    hi = args.end
    lo = hi - args.hours * HOUR_MS
    now = int(time.time() * 1000)
    if lo < now - MAX_AGE_MS + 60_000 or hi > now + MAX_AHEAD_MS - 60_000:
        print(
            f"error: events must lie between 14 days ago and 2 hours ahead of now ({iso_s(now)}), "
            f"or PutLogEvents drops them; got {iso_s(lo)} .. {iso_s(hi)}",
            file=sys.stderr,
        )
        return 2
    os.makedirs(args.out_dir, exist_ok=True)
    for variable in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(variable, None)  # seed only ever talks to the local endpoint as "testing"
    counties = county_names(args.counties)
    accounts = [
        Account(i, f"{args.account_base + i + 1:012d}", i not in args.no_stack, i not in args.no_events)
        for i in range(args.accounts)
    ]
    generate = dict(
        seed=args.seed, counties=counties, lo=lo, hi=hi, window_ms=min(args.granularity) * 60_000,
        coarsest_ms=max(args.granularity) * 60_000, per_window=args.events_per_window,
    )
    # processes, not threads: generating and serializing events is CPU-bound
    with ProcessPoolExecutor(max_workers=min(4, len(accounts))) as pool:
        accounts = list(pool.map(seed_account, accounts, [args] * len(accounts), [generate] * len(accounts)))

    write_accounts_yaml(os.path.join(args.out_dir, "accounts.yaml"), accounts)
    for granularity in args.granularity:
        with open(os.path.join(args.out_dir, f"ground_truth_{granularity}.csv"), "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["account_id", "county", "timestamp", "avg_mvl_metric"])
            writer.writerows(ground_truth(accounts, lo, hi, granularity))
    summary = {
        "accounts": [
            {"id": a.account_id, "log_group": a.log_group, "has_stack": a.has_stack, "has_events": a.has_events}
            for a in accounts
        ],
        "end": iso_s(hi),
        "hours": args.hours,
        "granularities": args.granularity,
        "counties": counties,
        "events_total": sum(a.events_written for a in accounts),
        # metric events written exactly at `end`: outside [end - hours, end), so not in any ground truth
        "excluded_events": [
            {"account_id": a.account_id, "county": m.county, "timestamp": iso_ms(m.timestamp_ms), "value": m.value}
            for a in accounts for m in a.excluded
        ],
    }
    with open(os.path.join(args.out_dir, "seed.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
