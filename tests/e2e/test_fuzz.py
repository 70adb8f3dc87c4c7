"""A fuzz run generated from Docker's v1.41 swagger (schemathesis) against a private daemon: no input
gets a 5xx, the daemon is alive and answers /_ping afterwards, and nothing appeared on the host outside
its roots (files in /, /etc, /var/lib, /run, /tmp; network devices, cgroups, iptables rules, mounts).

In `make test` it is short and fixed (seed SEED, SERVIN_FUZZ_EXAMPLES per operation and generation mode,
at most SERVIN_FUZZ_SECONDS); `make fuzz` runs it long, with swarm and plugin paths as well."""

from __future__ import annotations

import os
from collections import Counter
import socket
import time
from dataclasses import dataclass, field

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.support.daemon import ServinDaemon, load_busybox
from tests.support.fuzz import HostTree, is_finding, load_schema, names_in, point_at_existing, selected, steer
from tests.support.hoststate import HostState

SEED = 1241
EXAMPLES = int(os.environ.get("SERVIN_FUZZ_EXAMPLES", "12"))
BUDGET = float(os.environ.get("SERVIN_FUZZ_SECONDS", "45"))
EVERYTHING = os.environ.get("SERVIN_FUZZ_ALL") == "1"
REQUEST_TIMEOUT = 5.0


@dataclass(frozen=True)
class Finding:
    label: str
    status: int
    message: str
    curl: str

    def __str__(self) -> str:
        return f"{self.label}: {self.status} {self.message[:200]}\n    {self.curl[:600]}"


@dataclass
class Run:
    base_url: str
    session: requests.Session
    findings: list[Finding]
    timeouts: list[str]
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    names: set[str] = field(default_factory=set)  # every string sent (tests/support/fuzz.names_in)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _send(run: Run, label: str, case: schemathesis.Case) -> None:
    try:
        resp = case.call(base_url=run.base_url, session=run.session, timeout=REQUEST_TIMEOUT)
    except requests.exceptions.ReadTimeout:
        run.timeouts.append(label)
        return
    except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, UnicodeError, ValueError):
        return  # requests will not send it: nothing reached the daemon
    except requests.exceptions.ConnectionError as exc:
        if "timed out" in str(exc):
            run.timeouts.append(label)
            return
        run.findings.append(Finding(label, 0, f"connection failed: {exc}", case.as_curl_command()))
        return
    run.sent += 1
    run.statuses[resp.status_code] += 1
    for part in (case.path_parameters, case.query, case.headers, case.body):
        names_in(part, run.names)
    text = resp.content.decode(errors="replace") if resp.status_code >= 500 else ""
    if is_finding(resp.status_code, text):
        run.findings.append(Finding(label, resp.status_code, text, case.as_curl_command()))


def fuzz_operation(run: Run, op: schemathesis.APIOperation) -> None:
    label = op.label

    def prepared(drawn: tuple[schemathesis.Case, bool]) -> schemathesis.Case:
        case, existing = drawn
        case.body = steer(label, case.body)
        if existing:  # past the lookups: a known image, objects that exist
            if label == "POST /containers/create" and isinstance(case.body, dict):
                case.body["Image"] = "busybox"
            point_at_existing(label, op.path, case.path_parameters)
        return case

    strategy = st.one_of(*(op.as_strategy(generation_mode=mode)
                           for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)))

    @seed(SEED)
    @settings(max_examples=2 * EXAMPLES, database=None, deadline=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=st.tuples(strategy, st.booleans()).map(prepared))
    def send(case: schemathesis.Case) -> None:
        _send(run, label, case)

    send()


def test_the_swagger_fuzz_run_finds_no_server_errors() -> None:
    schema = schemathesis.openapi.from_dict(load_schema())
    ops = [op for op in (r.ok() for r in schema.get_all_operations()) if selected(op.label, everything=EVERYTHING)]
    tree, host = HostTree.read(), HostState.read()
    port = free_port()
    # the Docker API's input is fuzzed, not the gate: no credential asked on this loopback port
    d = ServinDaemon(("-H", f"tcp://127.0.0.1:{port}", "--auth-tcp", "none", "--default-address-pool",
                      "base=10.214.0.0/16,size=24"))
    try:
        d.start()
        load_busybox(d)
        for cmd in (("create", "--name", "fuzz-ctr", "busybox", "true"), ("tag", "busybox", "fuzz-img"),
                    ("network", "create", "fuzz-net"), ("volume", "create", "fuzz-vol")):
            d.docker(*cmd)
        run = Run(base_url=f"http://127.0.0.1:{port}/v1.41", session=requests.Session(), findings=[], timeouts=[])
        deadline = time.monotonic() + BUDGET
        left_out = []
        for op in ops:
            if time.monotonic() > deadline:
                left_out.append(op.label)
                continue
            fuzz_operation(run, op)
        print(f"fuzz: {run.sent} requests over {len(ops) - len(left_out)} operations (seed {SEED}); "
              f"out of time for {len(left_out)}: {left_out}; timed out: {sorted(set(run.timeouts))}; "
              f"answers: {dict(sorted(run.statuses.items()))}")
        assert d.proc is not None and d.proc.poll() is None, d.log()
        assert requests.get(f"http://127.0.0.1:{port}/_ping", timeout=5).text == "OK"
        assert d.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
        added = HostTree.read().added_since(tree, run.names)
        log = d.log_file.read_text(errors="replace")
    finally:
        d.cleanup()
    assert not added, f"the fuzz run created outside the daemon's roots: {added}"
    assert not HostState.read().added_since(host)
    assert len(ops) - len(left_out) >= min(len(ops), 20), left_out
    tracebacks = [t for t in log.split("Traceback (most recent call last):")[1:]]
    assert not run.findings, ("server errors:\n" + "\n".join(str(f) for f in run.findings)
                              + "\nthe daemon's tracebacks:\n" + "\n---\n".join(t[-1500:] for t in tracebacks[-5:]))
