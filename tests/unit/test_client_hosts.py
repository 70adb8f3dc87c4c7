"""The client's host parsing, the CLI's reading of Go-style boolean flags, and docker's human units."""

from __future__ import annotations

import pytest

from servin.cli.connect import spell_bool_flags
from servin.cli.render import bytes_size, human_duration
from servin.client import TLSConfig
from servin.client.endpoint import parse_host
from servin.errors import InvalidArgument


def test_default_and_unix_hosts() -> None:
    ep = parse_host("", None)
    assert (ep.url, ep.socket_path, ep.tls) == ("unix:///run/servin/servin.sock", "/run/servin/servin.sock", None)
    assert parse_host("unix:///tmp/a b.sock", None).request_url("/info") == "http://%2Ftmp%2Fa%20b.sock/info"


@pytest.mark.parametrize(("text", "tls", "url", "host", "port", "secure"), [
    ("tcp://10.0.0.1", False, "tcp://10.0.0.1:2375", "10.0.0.1", 2375, False),
    ("tcp://10.0.0.1", True, "tcp://10.0.0.1:2376", "10.0.0.1", 2376, True),
    ("tcp://:2375", False, "tcp://localhost:2375", "localhost", 2375, False),
    ("tcp://[::1]:2376", True, "tcp://[::1]:2376", "::1", 2376, True),
    ("http://localhost:2375", False, "http://localhost:2375", "localhost", 2375, False),
    ("https://servin.example.com", False, "https://servin.example.com:2376", "servin.example.com", 2376, True),
])
def test_tcp_hosts(text: str, tls: bool, url: str, host: str, port: int, secure: bool) -> None:
    ep = parse_host(text, TLSConfig(verify=False) if tls else None)
    assert (ep.url, ep.host, ep.port, ep.tls is not None, ep.socket_path) == (url, host, port, secure, None)


@pytest.mark.parametrize(("text", "tls", "message"), [
    ("ssh://me@box", False, "ssh:// hosts are not supported by servin"),
    ("fd://3", False, "fd:// is for the daemon's own listeners"),
    ("npipe:////./pipe/x", False, "unsupported host scheme npipe://"),
    ("box:2375", False, "invalid host 'box:2375'"),
    ("unix://relative.sock", False, "needs an absolute path"),
    ("unix:///x.sock", True, "TLS is for tcp:// hosts"),
    ("http://box:2375", True, "plain http:// but TLS was asked for"),
    ("tcp://box:2375/v1.41", False, "without a path"),
    ("tcp://box:99999", False, "invalid host"),
])
def test_refused_hosts(text: str, tls: bool, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_host(text, TLSConfig(verify=False) if tls else None)


def test_bare_boolean_flags_before_the_command_do_not_eat_it() -> None:
    assert spell_bool_flags(["--tlsverify", "version"]) == ["--tlsverify=true", "version"]
    assert spell_bool_flags(["-H", "--tls", "--tls", "info"]) == ["-H", "--tls", "--tls=true", "info"]
    assert spell_bool_flags(["--tls=false", "daemon", "--tls"]) == ["--tls=false", "daemon", "--tls"]


@pytest.mark.parametrize(("seconds", "text"), [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (180, "3 minutes"), (3600, "About an hour"), (5 * 3600, "5 hours"), (3 * 86400, "3 days"),
    (30 * 86400, "4 weeks"), (90 * 86400, "3 months"), (800 * 86400, "2 years"),
])
def test_human_duration_is_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_bytes_size_is_go_units() -> None:
    assert bytes_size(8 << 30) == "8GiB"
    assert bytes_size(8345000000) == "7.772GiB"
    assert bytes_size(512) == "512B"
