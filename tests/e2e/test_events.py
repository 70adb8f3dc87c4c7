"""`docker events`: live stream, --since replay, filters, Docker's field names."""

from __future__ import annotations

import json
import subprocess
import time

from tests.support.daemon import ServinDaemon


def test_events_stream_live_and_replay(servin: ServinDaemon) -> None:
    d = servin
    since = str(int(time.time()) - 1)
    watcher = subprocess.Popen(["docker", "events", "--format", "{{json .}}", "--filter", "type=container"],
                               env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        d.docker("run", "--name", "evented", "--label", "ev=1", "busybox", "sh", "-c", "exit 3", check=False)
        d.docker("rm", "evented")
        time.sleep(0.5)
    finally:
        watcher.terminate()
        live_out, _ = watcher.communicate(timeout=10)
    live = [json.loads(line) for line in live_out.decode().splitlines()]
    actions = [e["Action"] for e in live if e["Actor"]["Attributes"].get("name") == "evented"]
    assert actions == ["create", "attach", "start", "die", "destroy"]
    die = next(e for e in live if e["Action"] == "die")
    assert die["Actor"]["Attributes"]["exitCode"] == "3"
    assert die["Actor"]["Attributes"]["image"] == "busybox" and die["Actor"]["Attributes"]["ev"] == "1"
    assert die["Type"] == "container" and die["status"] == "die" and die["from"] == "busybox"
    assert die["timeNano"] // 1_000_000_000 == die["time"]

    until = str(int(time.time()) + 1)
    replay = d.docker("events", "--since", since, "--until", until,
                      "--format", "{{.Action}} {{.Actor.Attributes.name}}",
                      "--filter", "event=die", "--filter", "label=ev=1", timeout=20)
    assert replay.stdout.decode().split("\n")[0] == "die evented"
    assert len(replay.stdout.decode().strip().splitlines()) == 1


def test_volume_events(servin: ServinDaemon) -> None:
    d = servin
    since = str(time.time() - 0.5)
    d.docker("volume", "create", "evvol")
    d.docker("volume", "rm", "evvol")
    until = str(int(time.time()) + 1)
    res = d.docker("events", "--since", since, "--until", until, "--filter", "type=volume",
                   "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}", timeout=20)
    assert res.stdout.decode().splitlines() == ["volume create evvol", "volume destroy evvol"]


def test_tag_and_untag_events_name_the_image_as_the_user_wrote_it(servin: ServinDaemon) -> None:
    d = servin
    since = str(time.time() - 0.5)
    d.docker("tag", "busybox", "app:1")
    d.docker("rmi", "app:1")
    until = str(int(time.time()) + 1)
    res = d.docker("events", "--since", since, "--until", until, "--filter", "event=tag", "--filter", "event=untag",
                   "--format", "{{.Action}} {{.Actor.Attributes.name}}", timeout=20)
    assert res.stdout.decode().splitlines() == ["tag app:1", "untag app:1"]
