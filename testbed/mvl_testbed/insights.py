"""A small CloudWatch Logs Insights evaluator with AWS semantics.

Why this exists: moto's own Logs Insights engine ignores `filter` and `stats`, so a
query like mvl-monitor's (filter on msg, avg per county per bin) would come back
as raw events.  This module evaluates the subset of the Insights language that
mvl-monitor uses, the way AWS does, so the test bed can return realistic
GetQueryResults rows.  It is pure (no moto, no I/O): parse a query string into a
`Plan`, then `evaluate` the plan over `(timestamp_ms, message)` pairs.

Supported commands (joined with `|`):
  fields  <path> [as <name>], ...      dotted paths into the JSON message; @timestamp, @message
  filter  <cmp> [and|or <cmp>] ...    =, !=, <, <=, >, >= against string/number literals; not, ( )
  stats   <agg>(<field>|*) [as <name>], ... [by <field>|bin(<N><unit>) [as <name>], ...]
          agg is avg, count, min, max or sum; units s, m, h, d, w (and long forms)
  limit   <N>
  sort    accepted and ignored (row order is fixed: see `evaluate`)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable

DEFAULT_LIMIT = 1000  # rows returned when neither the query nor StartQuery sets a limit
MAX_LIMIT = 10000  # hard cap of Logs Insights

_UNIT_MS = {
    "ms": 1,
    "s": 1000, "sec": 1000, "secs": 1000, "second": 1000, "seconds": 1000,
    "m": 60_000, "min": 60_000, "mins": 60_000, "minute": 60_000, "minutes": 60_000,
    "h": 3_600_000, "hr": 3_600_000, "hrs": 3_600_000, "hour": 3_600_000, "hours": 3_600_000,
    "d": 86_400_000, "day": 86_400_000, "days": 86_400_000,
    "w": 604_800_000, "week": 604_800_000, "weeks": 604_800_000,
}
_AGGREGATES = {"avg", "count", "min", "max", "sum"}
_COMPARATORS = {"=", "!=", "<", "<=", ">", ">="}


class QueryError(ValueError):
    """The query string is malformed or uses something this evaluator does not support."""


# --------------------------------------------------------------------------- tokens

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<backtick>`[^`]*`)
  | (?P<duration>\d+(?:\.\d+)?[A-Za-z]+)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[@A-Za-z_][\w.@]*)
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<punct>[|(),*])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # string, backtick, duration, number, ident, op, punct
    text: str


def _tokenize(query: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(query):
        match = _TOKEN_RE.match(query, pos)
        if not match:
            raise QueryError(f"unexpected character {query[pos]!r} at offset {pos}")
        pos = match.end()
        if match.lastgroup != "ws":
            tokens.append(_Token(match.lastgroup, match.group()))
    return tokens


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Literal:
    value: str | float


@dataclass(frozen=True)
class FieldRef:
    name: str  # an alias defined by `fields`, a dotted JSON path, @timestamp or @message


@dataclass(frozen=True)
class Comparison:
    left: FieldRef | Literal
    op: str
    right: FieldRef | Literal


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and", "or", "not"
    operands: tuple[Any, ...]


@dataclass(frozen=True)
class FieldsStage:
    items: tuple[tuple[FieldRef, str], ...]  # (source, output name)


@dataclass(frozen=True)
class FilterStage:
    condition: Comparison | BoolOp


@dataclass(frozen=True)
class Aggregate:
    func: str
    arg: FieldRef | None  # None for count(*) / count()
    name: str


@dataclass(frozen=True)
class GroupKey:
    name: str  # output field name
    source: FieldRef | None = None  # group by a field ...
    bin_ms: int | None = None  # ... or by bin(@timestamp)


@dataclass(frozen=True)
class StatsStage:
    aggregates: tuple[Aggregate, ...]
    keys: tuple[GroupKey, ...]


@dataclass
class Plan:
    stages: list[FieldsStage | FilterStage] = field(default_factory=list)
    stats: StatsStage | None = None
    limit: int | None = None


class _Parser:
    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> _Token:
        token = self.peek()
        if token is None:
            raise QueryError("unexpected end of command")
        self.pos += 1
        return token

    def at_keyword(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "ident" and token.text.lower() == word

    def at_punct(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "punct" and token.text == text

    def expect_punct(self, text: str) -> None:
        token = self.next()
        if token.kind != "punct" or token.text != text:
            raise QueryError(f"expected {text!r}, got {token.text!r}")

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def field_ref(self) -> FieldRef:
        token = self.next()
        if token.kind == "ident":
            return FieldRef(token.text)
        if token.kind == "backtick":
            return FieldRef(token.text[1:-1])
        raise QueryError(f"expected a field name, got {token.text!r}")

    def alias(self, default: str) -> str:
        if self.at_keyword("as"):
            self.next()
            return self.field_ref().name
        return default

    def operand(self) -> FieldRef | Literal:
        token = self.peek()
        if token is not None and token.kind == "string":
            self.next()
            return Literal(_unquote(token.text))
        if token is not None and token.kind == "number":
            self.next()
            return Literal(float(token.text))
        return self.field_ref()

    # condition := and_cond ("or" and_cond)* ; and_cond := unary ("and" unary)*
    def condition(self) -> Comparison | BoolOp:
        terms = [self.and_condition()]
        while self.at_keyword("or"):
            self.next()
            terms.append(self.and_condition())
        return terms[0] if len(terms) == 1 else BoolOp("or", tuple(terms))

    def and_condition(self) -> Comparison | BoolOp:
        terms = [self.unary_condition()]
        while self.at_keyword("and"):
            self.next()
            terms.append(self.unary_condition())
        return terms[0] if len(terms) == 1 else BoolOp("and", tuple(terms))

    def unary_condition(self) -> Comparison | BoolOp:
        if self.at_keyword("not"):
            self.next()
            return BoolOp("not", (self.unary_condition(),))
        if self.at_punct("("):
            self.next()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        left = self.operand()
        op = self.next()
        if op.kind != "op" or op.text not in _COMPARATORS:
            raise QueryError(f"expected a comparison operator, got {op.text!r}")
        return Comparison(left, op.text, self.operand())

    def aggregate(self) -> Aggregate:
        func_token = self.next()
        func = func_token.text.lower()
        if func_token.kind != "ident" or func not in _AGGREGATES:
            raise QueryError(f"unsupported stats function {func_token.text!r}")
        self.expect_punct("(")
        arg: FieldRef | None = None
        if self.at_punct(")"):
            arg_text = ""
        elif self.at_punct("*"):
            self.next()
            arg_text = "*"
        else:
            arg = self.field_ref()
            arg_text = arg.name
        if arg is None and func != "count":
            raise QueryError(f"{func}() needs a field")
        self.expect_punct(")")
        return Aggregate(func, arg, self.alias(f"{func_token.text}({arg_text})"))

    def group_key(self) -> GroupKey:
        if self.at_keyword("bin"):
            self.next()
            self.expect_punct("(")
            duration = self.next()
            if duration.kind != "duration":
                raise QueryError(f"bin() needs a duration like 1h, got {duration.text!r}")
            self.expect_punct(")")
            return GroupKey(self.alias(f"bin({duration.text})"), bin_ms=_duration_ms(duration.text))
        source = self.field_ref()
        return GroupKey(self.alias(source.name), source=source)

    def comma_list(self, item: Callable[[], Any], stop_keyword: str | None = None) -> list[Any]:
        items = [item()]
        while self.at_punct(","):
            self.next()
            items.append(item())
        if not self.done() and not (stop_keyword and self.at_keyword(stop_keyword)):
            raise QueryError(f"unexpected {self.peek().text!r}")
        return items


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _duration_ms(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]+)", text)
    unit = match.group(2).lower()
    if unit not in _UNIT_MS:
        raise QueryError(f"unsupported bin unit {match.group(2)!r}")
    size = int(float(match.group(1)) * _UNIT_MS[unit])
    if size <= 0:
        raise QueryError(f"bin size must be positive: {text!r}")
    return size


def _split_commands(tokens: list[_Token]) -> list[list[_Token]]:
    commands: list[list[_Token]] = [[]]
    for token in tokens:
        if token.kind == "punct" and token.text == "|":
            commands.append([])
        else:
            commands[-1].append(token)
    return commands


def parse_query(query: str) -> Plan:
    """Parse a Logs Insights query string into a Plan; raise QueryError if it is not supported."""
    plan = Plan()
    for command in _split_commands(_tokenize(query)):
        if not command:
            raise QueryError("empty command")
        parser = _Parser(command[1:])
        keyword = command[0].text.lower() if command[0].kind == "ident" else ""
        if keyword in ("fields", "filter") and plan.stats is not None:
            raise QueryError(f"{keyword} after stats is not supported")
        if keyword == "fields":
            def item() -> tuple[FieldRef, str]:
                source = parser.field_ref()
                return source, parser.alias(source.name)
            plan.stages.append(FieldsStage(tuple(parser.comma_list(item))))
        elif keyword == "filter":
            plan.stages.append(FilterStage(parser.condition()))
            if not parser.done():
                raise QueryError(f"unexpected {parser.peek().text!r} in filter")
        elif keyword == "stats":
            if plan.stats is not None:
                raise QueryError("only one stats command is supported")
            aggregates = parser.comma_list(parser.aggregate, stop_keyword="by")
            keys: list[GroupKey] = []
            if parser.at_keyword("by"):
                parser.next()
                keys = parser.comma_list(parser.group_key)
            plan.stats = StatsStage(tuple(aggregates), tuple(keys))
        elif keyword == "limit":
            token = parser.next()
            if token.kind != "number" or not token.text.isdigit() or int(token.text) < 1 or not parser.done():
                raise QueryError("limit needs one positive integer")
            plan.limit = int(token.text)
        elif keyword != "sort":
            raise QueryError(f"unsupported command {command[0].text!r}")
    return plan


# --------------------------------------------------------------------------- evaluation


def format_number(value: float) -> str:
    """Format a number as Logs Insights does: plain decimal, no exponent, no trailing `.0`."""
    if float(value).is_integer():
        return str(int(value))
    return format(Decimal(repr(float(value))), "f")


def format_timestamp(ms: int) -> str:
    """Format epoch milliseconds as Insights shows @timestamp and bin(): `YYYY-MM-DD HH:MM:SS.mmm` UTC."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


class _Timestamp(int):
    """Epoch milliseconds that display as a timestamp (@timestamp and bin() values)."""


def _display(value: Any) -> str | None:
    """Every result value is a string; None means the field is absent from the row."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, _Timestamp):
        return format_timestamp(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return format_number(value)
    return json.dumps(value, separators=(",", ":"))


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


class _Record:
    """One log event as the query sees it: lazily parsed JSON plus the fields defined so far."""

    def __init__(self, timestamp_ms: int, message: str):
        self.timestamp_ms = timestamp_ms
        self.message = message
        self.defined: dict[str, Any] = {}
        self._json: Any = None
        self._parsed = False

    def lookup(self, name: str) -> Any:
        if name in self.defined:
            return self.defined[name]
        if name == "@timestamp":
            return _Timestamp(self.timestamp_ms)
        if name == "@message":
            return self.message
        if not self._parsed:
            self._parsed = True
            try:
                self._json = json.loads(self.message)
            except ValueError:
                self._json = None
        value = self._json
        for key in name.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    def value(self, operand: FieldRef | Literal) -> Any:
        return operand.value if isinstance(operand, Literal) else self.lookup(operand.name)


def _compare(left: Any, op: str, right: Any) -> bool:
    if left is None or right is None:
        return False  # comparisons with a missing field never match
    if any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right)):
        a, b = _as_number(left), _as_number(right)
        if a is None or b is None:
            return op == "!="  # a number and a non-number are only ever unequal
    else:
        a, b = _display(left), _display(right)
    return {
        "=": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b,
    }[op]


def _matches(condition: Comparison | BoolOp, record: _Record) -> bool:
    if isinstance(condition, Comparison):
        return _compare(record.value(condition.left), condition.op, record.value(condition.right))
    if condition.op == "and":
        return all(_matches(term, record) for term in condition.operands)
    if condition.op == "or":
        return any(_matches(term, record) for term in condition.operands)
    return not _matches(condition.operands[0], record)


class _Accumulator:
    def __init__(self, func: str):
        self.func = func
        self.count = 0
        self.total = 0.0
        self.extreme: float | None = None

    def add(self, value: Any, counts_star: bool) -> None:
        if self.func == "count":
            self.count += 1 if counts_star or value is not None else 0
            return
        number = _as_number(value)
        if number is None:
            return  # non-numeric values are skipped by avg/sum/min/max
        self.count += 1
        self.total += number
        if self.extreme is None or (number < self.extreme if self.func == "min" else number > self.extreme):
            self.extreme = number

    def result(self) -> float | None:
        if self.func == "count":
            return self.count
        if self.count == 0:
            return None
        if self.func == "avg":
            return self.total / self.count
        if self.func == "sum":
            return self.total
        return self.extreme


@dataclass
class QueryResult:
    rows: list[list[dict[str, str]]]  # GetQueryResults `results`
    statistics: dict[str, float]  # recordsMatched, recordsScanned, bytesScanned


def effective_limit(plan: Plan, requested: int | None = None, max_rows: int = MAX_LIMIT) -> int:
    """Rows returned: the smaller of the query's `limit` and StartQuery's `limit` (1000 if neither),
    capped at 10000 and at the test bed's max_rows."""
    given = [n for n in (plan.limit, requested) if n is not None]
    return min(min(given) if given else DEFAULT_LIMIT, MAX_LIMIT, max_rows)


def evaluate(
    plan: Plan,
    events: Iterable[tuple[int, str]],
    start_time: int,
    end_time: int,
    limit: int,
) -> QueryResult:
    """Run `plan` over (timestamp_ms, message) events.

    start_time/end_time are epoch seconds and both ends are inclusive, as in StartQuery: an
    event counts when start_time*1000 <= ts < (end_time+1)*1000.  At most `limit` rows are
    returned, silently, as AWS does.  Stats rows are ordered by bin values, then by the other
    group values; each row lists the group fields (in `by` order) then the aggregates, and a
    field whose value is null is left out of its row.  Queries without stats return the
    `fields` (default @timestamp, @message) of matching events, newest first.
    """
    lo, hi = start_time * 1000, (end_time + 1) * 1000
    scanned = matched = scanned_bytes = 0
    groups: dict[tuple, list[_Accumulator]] = {}
    matched_records: list[_Record] = []
    for timestamp_ms, message in events:
        if not lo <= timestamp_ms < hi:
            continue
        scanned += 1
        scanned_bytes += len(message.encode("utf-8"))
        record = _Record(timestamp_ms, message)
        if not _passes_stages(plan, record):
            continue
        matched += 1
        if plan.stats is None:
            matched_records.append(record)
            continue
        key = tuple(
            _Timestamp(timestamp_ms // k.bin_ms * k.bin_ms) if k.bin_ms else record.lookup(k.source.name)
            for k in plan.stats.keys
        )
        accumulators = groups.get(key)
        if accumulators is None:
            accumulators = groups[key] = [_Accumulator(a.func) for a in plan.stats.aggregates]
        for agg, acc in zip(plan.stats.aggregates, accumulators):
            acc.add(record.lookup(agg.arg.name) if agg.arg else None, counts_star=agg.arg is None)

    if plan.stats is None:
        rows = _event_rows(plan, matched_records, limit)
    else:
        rows = _stats_rows(plan.stats, groups, limit)
    statistics = {
        "recordsMatched": float(matched),
        "recordsScanned": float(scanned),
        "bytesScanned": float(scanned_bytes),
    }
    return QueryResult(rows, statistics)


def _passes_stages(plan: Plan, record: _Record) -> bool:
    for stage in plan.stages:
        if isinstance(stage, FieldsStage):
            for source, name in stage.items:
                record.defined[name] = record.lookup(source.name)
        elif not _matches(stage.condition, record):
            return False
    return True


def _row(pairs: Iterable[tuple[str, Any]]) -> list[dict[str, str]]:
    return [{"field": name, "value": text} for name, value in pairs if (text := _display(value)) is not None]


def _stats_rows(stats: StatsStage, groups: dict[tuple, list[_Accumulator]], limit: int) -> list:
    bins = [i for i, k in enumerate(stats.keys) if k.bin_ms]
    others = [i for i, k in enumerate(stats.keys) if not k.bin_ms]

    def order(key: tuple) -> tuple:
        def sortable(v: Any) -> tuple:
            return (0, "") if v is None else (1, _display(v))
        return tuple(key[i] for i in bins) + tuple(sortable(key[i]) for i in others)

    rows = []
    for key in sorted(groups, key=order)[:limit]:
        values = [(k.name, v) for k, v in zip(stats.keys, key)]
        values += [(a.name, acc.result()) for a, acc in zip(stats.aggregates, groups[key])]
        rows.append(_row(values))
    return rows


def _event_rows(plan: Plan, records: list[_Record], limit: int) -> list:
    names = [name for stage in plan.stages if isinstance(stage, FieldsStage) for _, name in stage.items]
    names = list(dict.fromkeys(names)) or ["@timestamp", "@message"]
    records.sort(key=lambda r: r.timestamp_ms, reverse=True)
    return [_row((n, record.lookup(n)) for n in names) for record in records[:limit]]
