"""Tests of API versions above the one Servin declares yet (versions.MAX_VERSION), until it is raised:
in-process (`raise_max_version`) and with a real daemon (`newer_api_daemon`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from servin.api.wire import versions
from tests.support.daemon import ServinDaemon, load_busybox

NEWEST: versions.Version = (1, 55)


def raise_max_version(monkeypatch: pytest.MonkeyPatch, v: versions.Version = NEWEST) -> None:
    """The app in this process accepts and declares `v` (and serves unversioned requests as `v`)."""
    monkeypatch.setattr(versions, "MAX_VERSION", v)


class NewerApiDaemon(ServinDaemon):
    """A daemon whose MAX_VERSION is set before anything reads it (clients negotiate up to it)."""

    max_version: versions.Version = NEWEST

    def command(self, *hosts: str) -> list[str]:
        cmd = super().command(*hosts)
        assert cmd[1:3] == ["-m", "servin.cli.main"], cmd
        prelude = ("import runpy, servin.api.wire.versions as v; "
                   f"v.MAX_VERSION = {self.max_version!r}; "
                   "runpy.run_module('servin.cli.main', run_name='__main__')")
        return [cmd[0], "-c", prelude, *cmd[3:]]


@contextlib.contextmanager
def newer_api_daemon(extra_args: tuple[str, ...] = ()) -> Iterator[ServinDaemon]:
    """As running_daemon, at the newest API version."""
    d = NewerApiDaemon(extra_args)
    try:
        d.start()
        load_busybox(d)
        yield d
    finally:
        d.cleanup()
