#!/usr/bin/env python3
"""Compares two metrics CSVs by content, not bytes.

    compare_csv.py [--tol T] EXPECTED ACTUAL

Rows are keyed by (account_id, county, timestamp); timestamps may be written in any of the
usual UTC forms (2026-12-02T14:00:00Z, 2026-12-02 14:00:00.000, ...+00:00); values are compared
with an absolute tolerance of T (default 1e-9). Prints one summary line; exit 0 when the contents match, else 1.
"""

import csv
import math
import sys
from datetime import datetime, timezone


def norm_ts(s):
    s = s.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s.replace(" ", "T", 1))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def load(path):
    rows = {}
    dups = 0
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        for rec in r:
            key = (rec["account_id"].strip(), rec["county"], norm_ts(rec["timestamp"]))
            if key in rows:
                dups += 1
            rows[key] = float(rec["avg_mvl_metric"])
    return rows, dups


def main():
    args = sys.argv[1:]
    tol = 1e-9
    if len(args) == 4 and args[0] == "--tol":
        tol = float(args[1])
        args = args[2:]
    if len(args) != 2:
        sys.exit(__doc__)
    exp, exp_dups = load(args[0])
    act, act_dups = load(args[1])
    missing = exp.keys() - act.keys()
    extra = act.keys() - exp.keys()
    differ = [k for k in exp.keys() & act.keys() if not math.isclose(exp[k], act[k], rel_tol=0, abs_tol=tol)]
    ok = not (missing or extra or differ or act_dups)
    print(
        f"{'MATCH' if ok else 'MISMATCH'}: expected {len(exp)} rows, actual {len(act)} rows; "
        f"missing {len(missing)}, extra {len(extra)}, differing {len(differ)}, duplicate keys {act_dups}"
    )
    for label, keys in (("missing", missing), ("extra", extra), ("differing", differ)):
        for k in sorted(keys)[:3]:
            print(f"  {label}: {k} expected={exp.get(k)} actual={act.get(k)}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
