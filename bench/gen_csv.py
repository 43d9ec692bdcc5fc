#!/usr/bin/env python3
"""Writes a synthetic metrics CSV (account_id,county,timestamp,avg_mvl_metric) for chart benchmarks.

    gen_csv.py --accounts 10 --counties 24 --hours 24 --end 2026-12-03T00:00:00Z -o out.csv

gives accounts*counties series of `hours` hourly points each, sorted by account, county, time,
in the same layout as the test bed's ground_truth_60.csv. Deterministic (seeded).
"""

import argparse
import random
from datetime import datetime, timedelta, timezone


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--accounts", type=int, required=True)
    p.add_argument("--counties", type=int, required=True)
    p.add_argument("--hours", type=int, default=24)
    p.add_argument("--end", default="2026-12-03T00:00:00Z")
    p.add_argument("--timestamp-format", default="%Y-%m-%dT%H:%M:%SZ")
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args()

    end = datetime.fromisoformat(a.end.replace("Z", "+00:00")).astimezone(timezone.utc)
    start = end - timedelta(hours=a.hours)
    rng = random.Random(42)
    stamps = [(start + timedelta(hours=h + 1)).strftime(a.timestamp_format) for h in range(a.hours)]
    with open(a.output, "w") as f:
        f.write("account_id,county,timestamp,avg_mvl_metric\n")
        for i in range(a.accounts):
            account = str(100000000001 + i)
            for c in range(a.counties):
                county = f"County {c:03d}"
                base = rng.uniform(0.6, 1.0)
                for ts in stamps:
                    v = min(1.0, max(0.0, base + rng.gauss(0, 0.03)))
                    f.write(f"{account},{county},{ts},{v:.4f}\n")


if __name__ == "__main__":
    main()
