"""The C renderer of `docker logs` gives exactly what the Python reader gives, line shapes and all."""

from __future__ import annotations

import json
import random

import pytest

from servin.runtime import logfile
from servin.runtime.logfile import _render_py, render

pytestmark = pytest.mark.unit

TIME = "2026-11-22T09:00:00.123456789Z"


def entry(log: str, stream: str = "stdout", **extra: object) -> bytes:
    return json.dumps({"log": log, "stream": stream, "time": TIME, **extra}).encode() + b"\n"


def random_text(rng: random.Random) -> str:
    alphabet = ["a", "\n", "\t", '"', "\\", "/", "\x00", "\x1f", "<", "é", "€", "😀", "\u2028", "\udcff"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))


@pytest.mark.skipif(logfile.lib is None, reason="servin._native is not built")
@pytest.mark.parametrize("flags", range(16))
def test_c_renderer_matches_python_reader(flags: int) -> None:
    rng = random.Random(flags)
    lines = [entry(random_text(rng), rng.choice(["stdout", "stderr"])) for _ in range(300)]
    lines += [b'{"stream":"stderr","time":"' + TIME.encode() + b'","log":"keys in another order\\n"}\n',
              b'{ "log" : "spaced\\u00e9" , "stream" : "stdout" , "time" : "' + TIME.encode() + b'" }\n',
              entry("with attrs\n", attrs={"tag": "x"}),  # an object value: left to json
              b"not json at all\n", b"\n", entry("\ud83d lone high surrogate"),
              b'{"log":"bad escape \\q","stream":"stdout","time":"' + TIME.encode() + b'"}\n',
              b'{"log":"\\ud83d\\ude00 pair","stream":"stdout","time":"' + TIME.encode() + b'"}\n']
    rng.shuffle(lines)
    chunk = b"".join(lines)
    kw = {"stdout": bool(flags & 1), "stderr": bool(flags & 2), "tty": bool(flags & 4), "timestamps": bool(flags & 8)}
    assert render(chunk, **kw) == _render_py(chunk, 0, len(chunk), flags)


def test_frames_and_bare_payloads() -> None:
    chunk = entry("out\n") + entry("err\n", "stderr")
    assert render(chunk, stdout=True, stderr=True, tty=False, timestamps=False) == (
        b"\x01\x00\x00\x00\x00\x00\x00\x04out\n\x02\x00\x00\x00\x00\x00\x00\x04err\n")
    assert render(chunk, stdout=False, stderr=True, tty=True, timestamps=True) == f"{TIME} err\n".encode()
