"""daemon.json's labels, default-ulimits and max-concurrent-downloads/uploads, at start and after a
SIGHUP (`systemctl reload servin`), as the docker CLI sees them: `docker info`'s Labels, `ulimit -n`
in a container, the reload event's attributes; a bad file leaves the running configuration."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.daemon import ServinDaemon, load_busybox
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

# under this host's hard limit for open files (20000): without CAP_SYS_RESOURCE a container cannot go above it
FIRST = {"labels": ["env=test", "zone=a"], "max-concurrent-downloads": 2,
         "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}}}
SECOND = {"labels": ["env=prod"], "max-concurrent-uploads": 1,
          "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 4000, "Hard": 8000}}}


def started(config: dict[str, Any], *flags: str) -> ServinDaemon:
    d = ServinDaemon(flags)
    d.config_file.write_text(json.dumps(config))
    try:
        d.start()
        load_busybox(d)
    except BaseException:
        d.cleanup()
        raise
    return d


@pytest.fixture
def daemon() -> Iterator[ServinDaemon]:
    d = started(FIRST)
    try:
        yield d
    finally:
        d.cleanup()


def labels(d: ServinDaemon) -> list[str]:
    return list(json.loads(d.docker("info", "--format", "{{json .Labels}}").stdout))


def nofile(d: ServinDaemon, *run_flags: str) -> str:
    out = d.docker("run", "--rm", *run_flags, "busybox", "sh", "-c", "echo $(ulimit -n) $(ulimit -Hn)").stdout
    return out.decode().strip()


def reload(d: ServinDaemon, config: dict[str, Any] | str) -> None:
    d.config_file.write_text(config if isinstance(config, str) else json.dumps(config))
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)


def test_labels_and_default_ulimits_at_start_and_after_a_reload(daemon: ServinDaemon) -> None:
    assert labels(daemon) == ["env=test", "zone=a"]
    assert "env=test" in daemon.docker("info").stdout.decode()  # the CLI's Labels: section
    assert nofile(daemon) == "1024 2048"
    assert nofile(daemon, "--ulimit", "nofile=512:4096") == "512 4096"  # the container's own wins
    daemon.docker("create", "--name", "before", "busybox", "true")
    inspect = "{{json .HostConfig.Ulimits}}"
    assert json.loads(daemon.docker("inspect", "--format", inspect, "before").stdout) == [
        {"Name": "nofile", "Soft": 1024, "Hard": 2048}]

    since = str(int(time.time()) - 1)
    reload(daemon, SECOND)
    wait_for(lambda: labels(daemon), lambda got: got == ["env=prod"])
    assert nofile(daemon) == "4000 8000"  # the next container gets the new default
    assert nofile(daemon, "--ulimit", "nofile=100:200") == "100 200"
    # inspect merges the daemon's defaults of now, as dockerd's
    assert json.loads(daemon.docker("inspect", "--format", inspect, "before").stdout) == [
        {"Name": "nofile", "Soft": 4000, "Hard": 8000}]
    out = daemon.docker("events", "--since", since, "--until", str(int(time.time()) + 1), "--filter", "type=daemon",
                        "--format", "{{.Action}} {{json .Actor.Attributes}}").stdout.decode().splitlines()
    assert len(out) == 1 and out[0].startswith("reload ")
    attributes = json.loads(out[0].removeprefix("reload "))
    assert {k: attributes[k] for k in ("labels", "max-concurrent-downloads", "max-concurrent-uploads",
                                       "default-ulimits")} == {
        "labels": '["env=prod"]', "max-concurrent-downloads": "3", "max-concurrent-uploads": "1",
        "default-ulimits": '["nofile=4000:8000"]'}


@pytest.mark.parametrize("bad", [
    {"labels": ["env=prod", "env=dev"]},
    {"labels": ["nolabel"]},
    {"max-concurrent-downloads": -1},
    {"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 9, "Hard": 8}}},
])
def test_a_bad_value_leaves_the_running_configuration(daemon: ServinDaemon, bad: dict[str, Any]) -> None:
    reload(daemon, bad)
    wait_for(daemon.log_file.read_text, lambda text: "the running one stays" in text)
    assert labels(daemon) == ["env=test", "zone=a"]
    assert nofile(daemon) == "1024 2048"


def test_flags_set_them_too_and_a_bad_one_stops_the_start() -> None:
    d = started({}, "--label", "from=flag", "--default-ulimit", "nofile=900:1900", "--max-concurrent-uploads", "2")
    try:
        assert labels(d) == ["from=flag"]
        assert nofile(d) == "900 1900"
    finally:
        d.cleanup()
    d = ServinDaemon(("--label", "a=1", "--label", "a=2"))
    try:
        d.launch(d.command())
        assert d.proc is not None and d.proc.wait(20) != 0
        assert "conflict labels for a=2 and a=1" in d.log()
    finally:
        d.cleanup()
