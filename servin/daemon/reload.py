"""SIGHUP (`systemctl reload servin`): daemon.json is read again, as dockerd's Reload does. What can
change in a running daemon is applied; a change to anything else is named in the log as waiting for
a restart; a file that does not load leaves the running configuration as it is."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import fields, replace

from servin import errors
from servin.core.events import Event
from servin.daemon.config import FILE_KEYS, ConfigError, DaemonConfig, DefaultUlimit, go_format

log = logging.getLogger(__name__)

JSON_ATTRIBUTES = ("labels", "default_ulimits")

RELOADABLE = ("debug", "log_level", "insecure_registries", "registry_mirrors", "labels",
              "max_concurrent_downloads", "max_concurrent_uploads", "default_ulimits",
              # the access layer's (and, with them, the API key file)
              "auth_tcp", "auth_unix", "api_rate_limit", "auth_failure_limit", "token_public_keys", "token_jwks",
              "token_audience", "token_issuer")


def log_level(config: DaemonConfig) -> int:
    if config.debug:
        return logging.DEBUG
    if config.log_level == "warn":
        return logging.WARNING
    return getattr(logging, config.log_level.upper(), logging.INFO)


def _attribute(value: object, name: str) -> str:
    """A reload event's attribute: lists as dockerd's json.Marshal writes its labels (["a=1","b=2"]),
    other values as %v."""
    if name in JSON_ATTRIBUTES and isinstance(value, tuple):
        return json.dumps([go_format(v) for v in value], separators=(",", ":"))
    return go_format(value)


def _unwired(*_: object, **__: object) -> None:
    """A part a test's Reloader leaves out."""


class Reloader:
    """`apply` is what the daemon runs on SIGHUP; each part it changes is a callable of the engine's."""

    def __init__(self, *, running: DaemonConfig, read: Callable[[], DaemonConfig], daemon_id: str,
                 configure_registry: Callable[..., None], set_debug: Callable[[bool], None],
                 publish: Callable[[Event], None], limit_transfers: Callable[..., None] = _unwired,
                 set_labels: Callable[[tuple[str, ...]], None] = _unwired,
                 set_default_ulimits: Callable[[tuple[DefaultUlimit, ...]], None] = _unwired) -> None:
        """``configure_registry(insecure_registries=, mirrors=)`` and ``limit_transfers(downloads=,
        uploads=)`` of the registry service; the labels (`docker info`) and the default ulimits
        (containers started from now on). The daemon wires every part; a test may leave the last
        three out."""
        self.running = running
        self._read = read
        self._daemon_id = daemon_id
        self._configure_registry = configure_registry
        self._set_debug = set_debug
        self._publish = publish
        self._limit_transfers = limit_transfers
        self._set_labels = set_labels
        self._set_default_ulimits = set_default_ulimits
        self.configure_access: Callable[[DaemonConfig], None] | None = None  # keys, tokens, limits (the gate)

    def apply(self) -> DaemonConfig:
        try:
            new = self._read()
            if self.configure_access is not None:  # first: a token key that does not load changes nothing
                self.configure_access(new)
            self._configure_registry(insecure_registries=new.insecure_registries, mirrors=new.registry_mirrors)
            # checked when the configuration resolved: does not fail here
            self._limit_transfers(downloads=new.max_concurrent_downloads, uploads=new.max_concurrent_uploads)
        except (ConfigError, errors.ServinError, OSError, ValueError, TypeError) as exc:
            log.error("reloading the configuration failed, the running one stays: %s",
                      exc.message if isinstance(exc, errors.ServinError) else exc)
            return self.running
        later = [FILE_KEYS[f.name] for f in fields(DaemonConfig)
                 if f.name not in RELOADABLE and getattr(new, f.name) != getattr(self.running, f.name)]
        if later:
            log.warning("configuration changes that take effect only when the daemon restarts: %s", ", ".join(later))
        self.running = replace(self.running, **{name: getattr(new, name) for name in RELOADABLE})
        logging.getLogger().setLevel(log_level(self.running))
        self._set_debug(self.running.debug)
        self._set_labels(self.running.labels)
        self._set_default_ulimits(self.running.default_ulimits)
        attributes = {FILE_KEYS[name]: _attribute(getattr(self.running, name), name) for name in RELOADABLE}
        self._publish(Event(type="daemon", action="reload", actor_id=self._daemon_id, attributes=attributes))
        log.info("Reloaded configuration: %s", attributes)
        return self.running
