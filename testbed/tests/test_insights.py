"""Tests of the Logs Insights evaluator against answers computed by hand.

Why this exists: the test bed's query results are the reference mvl-monitor is tested against,
so the evaluator itself must be right.  Every expected value below was worked out by hand from
the few events each test writes out (values are chosen exact in binary where averages matter).
"""

import json
from datetime import datetime, timezone

import pytest

from mvl_testbed.insights import QueryError, effective_limit, evaluate, format_number, parse_query

MVL_QUERY = """fields message.county as county, message.global_completeness as completeness, message.msg as msg
| filter msg = "mvl_completeness_metric"
| stats avg(completeness) as avg_global_completeness by county, bin({bin})
| limit 10000"""


def ms(text: str) -> int:
    """'2026-12-02 14:05:00.250' (UTC) -> epoch ms."""
    return round(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def s(text: str) -> int:
    return ms(text) // 1000


def lambda_event(when: str, county: str | None, msg: str = "mvl_completeness_metric", **extra):
    inner = {"component": "mirror-validator", "level": "info", "msg": msg, **extra}
    if county is not None:
        inner["county"] = county
    line = {"timestamp": when, "level": "INFO", "requestId": "r", "message": inner}
    return ms(when), json.dumps(line, separators=(",", ":"), ensure_ascii=False)


def metric(when: str, county: str | None, value):
    return lambda_event(when, county, global_completeness=value)


def run(query: str, events, start="2026-12-02 00:00:00", end="2026-12-03 00:00:00", limit=None):
    plan = parse_query(query)
    return evaluate(plan, events, s(start), s(end), effective_limit(plan, limit))


def table(result):
    """Rows as lists of (field, value) pairs, for compact expectations."""
    return [[(cell["field"], cell["value"]) for cell in row] for row in result.rows]


def test_filter_keeps_only_metric_events():
    events = [
        metric("2026-12-02 14:10:00", "Palm Beach", 0.9),
        lambda_event("2026-12-02 14:20:00", "Palm Beach", "mvl_completeness_below_threshold",
                     global_completeness=0.1, threshold=0.8),
        lambda_event("2026-12-02 14:21:00", "Palm Beach", "mvl_lambda_complete", mvl_metric=0.2),
        (ms("2026-12-02 14:22:00"), '{"time":"2026-12-02T14:22:00.000Z","type":"platform.report",'
                                    '"record":{"requestId":"r","metrics":{"durationMs":4255.2}}}'),
        (ms("2026-12-02 14:23:00"), "START RequestId: r Version: $LATEST"),  # not JSON at all
    ]
    assert table(run(MVL_QUERY.format(bin="1h"), events)) == [
        [("county", "Palm Beach"), ("bin(1h)", "2026-12-02 14:00:00.000"), ("avg_global_completeness", "0.9")],
    ]


def test_avg_per_county_per_bin_ordered_by_bin_then_county():
    events = [
        metric("2026-12-02 15:10:00", "Palm Beach", 0.7),
        metric("2026-12-02 14:55:00", "Palm Beach", 0.625),
        metric("2026-12-02 14:30:00", "St. Lucie", 0.5),
        metric("2026-12-02 14:05:00", "Palm Beach", 0.875),
    ]
    assert table(run(MVL_QUERY.format(bin="1h"), events)) == [
        [("county", "Palm Beach"), ("bin(1h)", "2026-12-02 14:00:00.000"), ("avg_global_completeness", "0.75")],
        [("county", "St. Lucie"), ("bin(1h)", "2026-12-02 14:00:00.000"), ("avg_global_completeness", "0.5")],
        [("county", "Palm Beach"), ("bin(1h)", "2026-12-02 15:00:00.000"), ("avg_global_completeness", "0.7")],
    ]


@pytest.mark.parametrize(
    "bin_text, expected_start",
    [
        ("15m", "2026-12-02 14:30:00.000"),
        ("60m", "2026-12-02 14:00:00.000"),
        ("1h", "2026-12-02 14:00:00.000"),
        ("6h", "2026-12-02 12:00:00.000"),
        ("1d", "2026-12-02 00:00:00.000"),
        ("90s", "2026-12-02 14:43:30.000"),  # 14:44:59 is 53099 s into the day; 53099 // 90 * 90 = 53010
    ],
)
def test_bins_are_epoch_aligned_and_named_after_the_expression(bin_text, expected_start):
    result = run(MVL_QUERY.format(bin=bin_text), [metric("2026-12-02 14:44:59.999", "Lee", 0.5)])
    assert table(result)[0][1] == (f"bin({bin_text})", expected_start)


def test_aliases_on_bin_and_aggregates():
    query = (
        "fields message.county as county | filter message.msg = 'mvl_completeness_metric'"
        " | stats count(*) as n, avg(message.global_completeness) by county, bin(1h) as window_start"
    )
    events = [metric("2026-12-02 09:59:59.999", "Lee", 0.25), metric("2026-12-02 09:00:00", "Lee", 0.75)]
    assert table(run(query, events)) == [
        [("county", "Lee"), ("window_start", "2026-12-02 09:00:00.000"), ("n", "2"),
         ("avg(message.global_completeness)", "0.5")],
    ]


def test_end_time_is_inclusive_of_its_whole_second_and_start_time_inclusive():
    start, end = "2026-12-02 14:00:00", "2026-12-02 15:00:00"
    events = [
        metric("2026-12-02 13:59:59.999", "Lee", 0.1),  # before startTime: out
        metric("2026-12-02 14:00:00.000", "Lee", 0.25),  # at startTime: in
        metric("2026-12-02 15:00:00.000", "Lee", 0.5),  # at endTime: in
        metric("2026-12-02 15:00:00.999", "Lee", 0.125),  # inside endTime's second: in
        metric("2026-12-02 15:00:01.000", "Lee", 0.5),  # after: out
    ]
    result = run("stats count(*) as n, sum(message.global_completeness) as total", events, start, end)
    assert table(result) == [[("n", "3"), ("total", "0.875")]]
    # the usual client range [end - 1 h, end) is sent as endTime = end - 1 s
    result = run("stats count(*) as n", events, start, "2026-12-02 14:59:59")
    assert table(result) == [[("n", "1")]]


def test_event_exactly_on_a_bin_boundary_belongs_to_the_bin_starting_there():
    events = [metric("2026-12-02 15:00:00.000", "Miami-Dade", 0.9958), metric("2026-12-02 14:59:59.999", "Miami-Dade", 0.5)]
    assert table(run(MVL_QUERY.format(bin="1h"), events)) == [
        [("county", "Miami-Dade"), ("bin(1h)", "2026-12-02 14:00:00.000"), ("avg_global_completeness", "0.5")],
        [("county", "Miami-Dade"), ("bin(1h)", "2026-12-02 15:00:00.000"), ("avg_global_completeness", "0.9958")],
    ]


def test_limit_truncates_silently_keeping_the_first_rows_in_order():
    counties = ["E", "B", "D", "A", "C"]
    events = [metric("2026-12-02 10:30:00", c, 0.5) for c in counties]
    events.append(metric("2026-12-02 09:30:00", "Z", 0.5))  # earliest bin comes first
    query = MVL_QUERY.format(bin="1h").replace("limit 10000", "limit 3")
    rows = table(run(query, events))
    assert [(r[0][1], r[1][1]) for r in rows] == [
        ("Z", "2026-12-02 09:00:00.000"), ("A", "2026-12-02 10:00:00.000"), ("B", "2026-12-02 10:00:00.000"),
    ]
    # StartQuery's limit parameter also caps the rows; so does the smaller of the two
    assert len(run(MVL_QUERY.format(bin="1h"), events, limit=2).rows) == 2


def test_effective_limit_defaults_and_caps():
    assert effective_limit(parse_query("stats count(*)")) == 1000
    assert effective_limit(parse_query("stats count(*)"), requested=50) == 50
    assert effective_limit(parse_query("stats count(*) | limit 20"), requested=50) == 20
    assert effective_limit(parse_query("stats count(*) | limit 20000")) == 10000
    assert effective_limit(parse_query("stats count(*) | limit 10000"), max_rows=7) == 7


def test_statistics_count_scanned_and_matched_records_and_bytes():
    events = [
        metric("2026-12-02 14:10:00", "Doña Ana", 0.5),  # "ñ" is 2 bytes in UTF-8
        lambda_event("2026-12-02 14:11:00", "Lee", "mvl_lambda_start"),
        metric("2026-12-03 00:00:01", "Lee", 0.5),  # after endTime: not scanned
    ]
    in_range = events[:2]
    expected_bytes = sum(len(m.encode("utf-8")) for _, m in in_range)
    assert expected_bytes == sum(len(m) for _, m in in_range) + 1
    result = run(MVL_QUERY.format(bin="1h"), events)
    assert result.statistics == {"recordsMatched": 1.0, "recordsScanned": 2.0, "bytesScanned": float(expected_bytes)}


def test_count_min_max_sum_skip_non_numeric_values():
    events = [
        metric("2026-12-02 14:00:00", "Lee", 0.5),
        metric("2026-12-02 14:01:00", "Lee", 2),
        metric("2026-12-02 14:02:00", "Lee", "n/a"),  # present but not a number
        metric("2026-12-02 14:03:00", "Lee", "0.25"),  # a numeric string counts as a number
        lambda_event("2026-12-02 14:04:00", "Lee"),  # no value at all
    ]
    query = (
        "fields message.global_completeness as v | stats count(*) as all_events, count(v) as with_v,"
        " min(v), max(v), sum(v), avg(v)"
    )
    assert table(run(query, events)) == [
        [("all_events", "5"), ("with_v", "4"), ("min(v)", "0.25"), ("max(v)", "2"), ("sum(v)", "2.75"),
         ("avg(v)", "0.9166666666666666")],  # 2.75 / 3
    ]


def test_missing_fields_are_null_and_left_out_of_rows():
    events = [metric("2026-12-02 14:00:00", None, 0.5), metric("2026-12-02 14:30:00", "Lee", 0.75)]
    assert table(run(MVL_QUERY.format(bin="1h"), events)) == [
        [("bin(1h)", "2026-12-02 14:00:00.000"), ("avg_global_completeness", "0.5")],  # county is null
        [("county", "Lee"), ("bin(1h)", "2026-12-02 14:00:00.000"), ("avg_global_completeness", "0.75")],
    ]
    # a group whose values are all non-numeric has a null avg, which is left out too
    result = run("stats avg(message.nope) as a, count(*) as n by message.county", events[1:])
    assert table(result) == [[("message.county", "Lee"), ("n", "1")]]
    # without stats: one row per event (newest first) with the requested fields that exist
    result = run("fields message.county as county, message.nope as nope, @timestamp", events)
    assert table(result) == [
        [("county", "Lee"), ("@timestamp", "2026-12-02 14:30:00.000")],
        [("@timestamp", "2026-12-02 14:00:00.000")],
    ]


@pytest.mark.parametrize(
    "condition, expected_counties",
    [
        ("v > 0.5", ["B", "C"]),
        ("v >= 0.5", ["A", "B", "C"]),
        ("v < 0.75", ["A"]),  # D's "low" is no number: never less, greater or equal
        ("v <= 0.75 and county != 'A'", ["B"]),
        ("v = 1", ["C"]),
        ("county = \"B\" or county = 'C'", ["B", "C"]),
        ("not (county = 'A' or county = 'B')", ["C", "D"]),
        ("missing != 'x'", []),  # comparisons with a missing field never match
    ],
)
def test_filter_comparisons(condition, expected_counties):
    events = [
        metric("2026-12-02 14:00:00", "A", 0.5),
        metric("2026-12-02 14:00:00", "B", 0.75),
        metric("2026-12-02 14:00:00", "C", 1),
        metric("2026-12-02 14:00:00", "D", "low"),
    ]
    query = f"fields message.county as county, message.global_completeness as v | filter {condition} | stats count(*) by county"
    result = run(query, events)
    assert [row[0][1] for row in table(result)] == expected_counties


def test_number_formatting():
    assert format_number(3.0) == "3"
    assert format_number(0.9312) == "0.9312"
    assert format_number(1e-05) == "0.00001"
    assert format_number(0.1 + 0.2) == "0.30000000000000004"


@pytest.mark.parametrize(
    "query",
    [
        "stats median(x)",
        "stats avg(x) by bin(1fortnight)",
        "filter x ~= 1",
        "limit 0",
        "fields a | | stats count(*)",
        "stats count(*) | filter x = 1",
        "parse @message 'a*b' as a, b",
    ],
)
def test_unsupported_or_malformed_queries_are_rejected(query):
    with pytest.raises(QueryError):
        parse_query(query)
