"""The mvl-monitor test bed server: moto with realistic Logs Insights and fault switches.

Why this exists: mvl-monitor's integration tests need a local AWS (STS, CloudFormation,
CloudWatch Logs) whose Logs Insights queries return real aggregates, take time to run, can be
cancelled, and can be made to fail or throttle.  moto provides the services; this module
  * replaces moto's StartQuery/GetQueryResults (and adds StopQuery) with a query lifecycle
    Scheduled -> Running -> Complete/Failed/Cancelled evaluated by `insights`,
  * wraps moto's WSGI app in a middleware that counts requests, delays them, throttles
    StartQuery and serves the observation/config endpoints under /_testbed/,
  * runs on 127.0.0.1 until SIGTERM/SIGINT or until its parent process dies.

Usage: python -m mvl_testbed.server --port-file PATH [--port 0] [--query-latency S]
       [--request-delay S] [--throttle-every N] [--fail-account ID ...] [--max-rows N] [--verbose]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import signal
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from typing import Any, Callable, Iterable

from moto.core.exceptions import JsonRESTError
from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException
from moto.logs.responses import LogsResponse
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from . import insights

HOST = "127.0.0.1"
_EMPTY_STATISTICS = {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}


@dataclasses.dataclass
class Config:
    """The fault switches; all of them can be changed at run time via POST /_testbed/config."""

    query_latency: float = 0.0  # seconds from StartQuery until a query is Complete
    request_delay: float = 0.0  # seconds every request sleeps before it is handled
    throttle_every: int = 0  # every Nth StartQuery fails with LimitExceededException; 0 = off
    fail_accounts: list[str] = dataclasses.field(default_factory=list)  # their queries end Failed
    max_rows: int = insights.MAX_LIMIT  # cap on the rows a query returns

    def update(self, changes: dict[str, Any]) -> None:
        """Apply all of `changes` or, if any is invalid, none (raises ValueError/TypeError)."""
        kinds = {"query_latency": float, "request_delay": float, "throttle_every": int, "max_rows": int}
        converted = {}
        for key, value in changes.items():
            if key == "fail_accounts":
                converted[key] = [str(a) for a in value]
            elif key in kinds:
                converted[key] = kinds[key](value)
            else:
                raise ValueError(f"unknown config key {key!r}")
        for key, value in converted.items():
            setattr(self, key, value)


@dataclasses.dataclass
class Query:
    query_id: str
    account: str
    log_groups: list[str]
    start_time: int
    end_time: int
    limit: int | None  # as sent in StartQuery
    query_string: str
    ready_at: float  # time.monotonic() when the query stops Running
    fails: bool
    result: insights.QueryResult | None
    polls: int = 0
    cancelled: bool = False

    def status(self) -> str:
        if self.cancelled:
            return "Cancelled"
        if self.polls <= 1:
            return "Scheduled"  # before and at the first GetQueryResults
        if time.monotonic() < self.ready_at:
            return "Running"
        return "Failed" if self.fails else "Complete"

    def to_stats(self) -> dict[str, Any]:
        return {
            "queryId": self.query_id,
            "account": self.account,
            "logGroup": self.log_groups[0],
            "logGroups": self.log_groups,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "limit": self.limit,
            "queryString": self.query_string,
            "status": self.status(),
        }


class Testbed:
    """Shared state of one server: switches, counters and the queries started so far."""

    def __init__(self, config: Config):
        self.config = config
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.start_query_calls = 0
        self.stopped_queries: list[str] = []
        self.queries: dict[str, Query] = {}

    def on_request(self, service: str, action: str) -> tuple[float, bool]:
        """Count a request; return (delay, throttled) for it."""
        with self.lock:
            self.requests[f"{service}:{action}"] += 1
            throttled = False
            if (service, action) == ("logs", "StartQuery"):
                self.start_query_calls += 1
                every = self.config.throttle_every
                throttled = every > 0 and self.start_query_calls % every == 0
            return self.config.request_delay, throttled

    def add_query(self, query: Query) -> None:
        with self.lock:
            self.queries[query.query_id] = query

    def find_query(self, query_id: str, account: str) -> Query:
        query = self.queries.get(query_id)
        if query is None or query.account != account:
            raise ResourceNotFoundException("The specified query does not exist.")
        return query

    def poll(self, query_id: str, account: str) -> tuple[str, Query]:
        with self.lock:
            query = self.find_query(query_id, account)
            query.polls += 1
            return query.status(), query

    def stop(self, query_id: str, account: str) -> bool:
        """Cancel a Scheduled/Running query; every call is recorded in stopped_queries."""
        with self.lock:
            query = self.find_query(query_id, account)
            self.stopped_queries.append(query_id)
            if query.status() in ("Scheduled", "Running"):
                query.cancelled = True
                return True
            return False

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": dict(self.requests),
                "stopped_queries": list(self.stopped_queries),
                "queries": [q.to_stats() for q in self.queries.values()],
            }


class MalformedQueryException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("MalformedQueryException", message)


def _log_group_names(response: LogsResponse) -> list[str]:
    name = response._get_param("logGroupName")
    names = response._get_param("logGroupNames") or []
    identifiers = response._get_param("logGroupIdentifiers") or []
    if sum(map(bool, (name, names, identifiers))) != 1:
        raise InvalidParameterException(
            "Specify exactly one of logGroupName, logGroupNames and logGroupIdentifiers."
        )
    if name:
        return [name]
    # identifiers are names or ARNs arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]
    return names or [i.split(":log-group:")[-1].removesuffix(":*") for i in identifiers]


def install_logs_patch(testbed: Testbed) -> None:
    """Replace moto's Logs Insights actions with the test bed's (StopQuery is new)."""

    def start_query(self: LogsResponse) -> str:
        names = _log_group_names(self)
        groups = self.logs_backend.groups
        for name in names:
            if name not in groups:
                raise ResourceNotFoundException(f"Log group '{name}' does not exist.")
        start_time = self._get_int_param("startTime")
        end_time = self._get_int_param("endTime")
        if start_time is None or end_time is None or end_time < start_time:
            raise InvalidParameterException("startTime and endTime are required, endTime >= startTime.")
        limit = self._get_int_param("limit")
        if limit is not None and not 1 <= limit <= insights.MAX_LIMIT:
            raise InvalidParameterException(f"limit must be between 1 and {insights.MAX_LIMIT}.")
        query_string = self._get_param("queryString") or ""
        try:
            plan = insights.parse_query(query_string)
        except insights.QueryError as error:
            raise MalformedQueryException(str(error)) from error

        config = testbed.config
        account = self.current_account
        fails = account in config.fail_accounts
        result = None
        if not fails:
            events = (
                (event.timestamp, event.message)
                for name in names
                for stream in list(groups[name].streams.values())
                for event in list(stream.events)
            )
            row_limit = insights.effective_limit(plan, limit, config.max_rows)
            result = insights.evaluate(plan, events, start_time, end_time, row_limit)
        query = Query(
            query_id=str(uuid.uuid4()),
            account=account,
            log_groups=names,
            start_time=start_time,
            end_time=end_time,
            limit=limit,
            query_string=query_string,
            ready_at=time.monotonic() + config.query_latency,
            fails=fails,
            result=result,
        )
        testbed.add_query(query)
        return json.dumps({"queryId": query.query_id})

    def get_query_results(self: LogsResponse) -> str:
        status, query = testbed.poll(self._get_param("queryId"), self.current_account)
        done = status == "Complete"
        return json.dumps({
            "results": query.result.rows if done else [],
            "statistics": query.result.statistics if done else _EMPTY_STATISTICS,
            "status": status,
        })

    def stop_query(self: LogsResponse) -> str:
        return json.dumps({"success": testbed.stop(self._get_param("queryId"), self.current_account)})

    # moto dispatches an action to the LogsResponse method of the same (snake_case) name
    LogsResponse.start_query = start_query
    LogsResponse.get_query_results = get_query_results
    LogsResponse.stop_query = stop_query


def _service_and_action(environ: dict[str, Any]) -> tuple[str, str]:
    """Identify an AWS request: service from the SigV4 credential scope, action from
    X-Amz-Target (JSON protocol) or the Action parameter (query protocol: STS, CloudFormation).
    Reading a form body consumes wsgi.input, so it is put back for moto."""
    service = "unknown"
    credential = environ.get("HTTP_AUTHORIZATION", "").split("Credential=")[-1].split(",")[0]
    scope = credential.split("/")
    if len(scope) == 5 and scope[4] == "aws4_request":
        service = scope[3]
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1]
    params = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if "Action" not in params and length and environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    return service, params.get("Action", ["unknown"])[0]


def _respond(start_response: Callable, status: str, body: Any, headers: Iterable = ()) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Length", str(len(data))), *headers])
    return [data]


class TestbedMiddleware:
    """WSGI middleware in front of moto: /_testbed/ endpoints, counting, delays, throttling."""

    def __init__(self, app: Callable, testbed: Testbed):
        self.app = app
        self.testbed = testbed

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/_testbed/"):
            return self.testbed_endpoint(environ, start_response)
        service, action = _service_and_action(environ)
        delay, throttled = self.testbed.on_request(service, action)
        if delay > 0:
            time.sleep(delay)
        if throttled:
            return _respond(
                start_response,
                "400 Bad Request",
                {"__type": "LimitExceededException", "message": "Rate exceeded (testbed throttle)"},
                [
                    ("Content-Type", "application/x-amz-json-1.1"),
                    ("x-amzn-errortype", "LimitExceededException"),
                    ("x-amzn-RequestId", str(uuid.uuid4())),
                ],
            )
        return self.app(environ, start_response)

    def testbed_endpoint(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        json_header = [("Content-Type", "application/json")]
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        if path == "/_testbed/stats" and method == "GET":
            return _respond(start_response, "200 OK", self.testbed.snapshot(), json_header)
        if path == "/_testbed/config" and method in ("GET", "POST"):
            if method == "POST":
                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                try:
                    with self.testbed.lock:
                        self.testbed.config.update(json.loads(body or b"{}"))
                except (ValueError, TypeError) as error:
                    return _respond(start_response, "400 Bad Request", {"error": str(error)}, json_header)
            return _respond(start_response, "200 OK", dataclasses.asdict(self.testbed.config), json_header)
        return _respond(start_response, "404 Not Found", {"error": f"no {method} {path}"}, json_header)


def _wait_until_answering(port: int, timeout: float = 30.0) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(f"http://{HOST}:{port}/_testbed/stats", timeout=2) as response:
                response.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mvl_testbed.server", description=__doc__.split("\n")[0])
    parser.add_argument("--port-file", required=True, help="where to write the port once serving")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--query-latency", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--request-delay", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--throttle-every", type=int, default=0, metavar="N")
    parser.add_argument("--fail-account", action="append", default=[], metavar="ACCOUNT_ID")
    parser.add_argument("--max-rows", type=int, default=insights.MAX_LIMIT, metavar="N")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    parent = os.getppid()
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    testbed = Testbed(Config(
        query_latency=args.query_latency,
        request_delay=args.request_delay,
        throttle_every=args.throttle_every,
        fail_accounts=args.fail_account,
        max_rows=args.max_rows,
    ))
    install_logs_patch(testbed)
    app = TestbedMiddleware(DomainDispatcherApplication(create_backend_app), testbed)
    server = make_server(HOST, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    _wait_until_answering(server.server_port)
    _write_atomically(args.port_file, str(server.server_port))
    logging.info("mvl testbed serving on http://%s:%d", HOST, server.server_port)
    # exit on a signal, or when the parent dies (we get re-parented) so no server is left behind
    while not stop.wait(1.0) and os.getppid() == parent:
        pass
    server.shutdown()
    server.server_close()
    logging.shutdown()
    # skip interpreter teardown: freeing millions of seeded events would delay the exit by seconds
    os._exit(0)


if __name__ == "__main__":
    main()
