"""Daemon configuration: dockerd's flags and daemon.json keys for the same things."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SOCKET = "unix:///run/servin/servin.sock"
DEFAULT_CONFIG_FILE = Path("/etc/servin/daemon.json")
# dockerd reads its TLS files from ~/.docker (DOCKER_CERT_PATH); Servin's live beside daemon.json, in the
# names `servin certs generate` writes, so `servin certs generate /etc/servin` is enough.
DEFAULT_CERT_DIR = DEFAULT_CONFIG_FILE.parent
DEFAULT_TLS_PORT, DEFAULT_PLAIN_PORT = 2376, 2375


class ConfigError(Exception):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonConfig:
    hosts: tuple[str, ...] = (DEFAULT_SOCKET,)
    data_root: Path = Path("/var/lib/servin")
    exec_root: Path = Path("/run/servin")
    pidfile: Path = Path("/run/servin/servin.pid")
    log_level: str = "info"
    debug: bool = False
    cgroup_parent: str = "servin"
    group: str = ""  # group owning the unix socket; "" = root's
    seed_busybox: bool = False  # load busybox:latest from the host's busybox-static if missing
    log_driver: str = "json-file"
    log_opts: dict[str, str] | None = None
    bridge: str = "servin0"  # the default bridge network's device ("none": containers get no bridge)
    bip: str = ""  # its address and prefix, e.g. 172.17.0.1/16 ("" = Docker's default)
    default_address_pools: tuple[dict[str, Any], ...] | None = None  # [{"base": "...", "size": 24}]
    icc: bool = True
    mtu: int = 0  # the default bridge's MTU (0: 1500)
    insecure_registries: tuple[str, ...] = ()  # host[:port] or CIDR; loopback is always insecure
    registry_mirrors: tuple[str, ...] = ()  # mirrors of docker.io, tried first for pulls
    seccomp_profile: str = ""  # a profile's path, "unconfined", or "" / "builtin": Docker's default
    no_new_privileges: bool = False  # no_new_privs for every new container unless its SecurityOpt says otherwise
    tls: bool | None = None  # None: not said; False (--tls=false) is needed for plain TCP off loopback
    tlsverify: bool = False  # implies tls; clients need a certificate signed by tlscacert
    tlscacert: Path = DEFAULT_CERT_DIR / "ca.pem"
    tlscert: Path = DEFAULT_CERT_DIR / "server-cert.pem"
    tlskey: Path = DEFAULT_CERT_DIR / "server-key.pem"
    read_header_timeout: float = 30.0  # seconds a request's headers may take (slowloris); 0: no limit
    max_connections_per_client: int = 512  # per TCP address / non-root UID on a unix socket; 0: no cap

    @property
    def tls_on(self) -> bool:
        return bool(self.tls) or self.tlsverify


# flag dest → daemon.json key (dockerd's names)
FILE_KEYS = {
    "hosts": "hosts", "data_root": "data-root", "exec_root": "exec-root", "pidfile": "pidfile",
    "log_level": "log-level", "debug": "debug", "cgroup_parent": "cgroup-parent", "group": "group",
    "seed_busybox": "seed-busybox", "log_driver": "log-driver", "log_opts": "log-opts",
    "bridge": "bridge", "bip": "bip", "default_address_pools": "default-address-pools", "icc": "icc", "mtu": "mtu",
    "insecure_registries": "insecure-registries", "registry_mirrors": "registry-mirrors",
    "seccomp_profile": "seccomp-profile", "no_new_privileges": "no-new-privileges",
    "tls": "tls", "tlsverify": "tlsverify", "tlscacert": "tlscacert", "tlscert": "tlscert", "tlskey": "tlskey",
    "read_header_timeout": "read-header-timeout", "max_connections_per_client": "max-connections-per-client",
}


def _flag_bool(value: str) -> bool:
    """A Go boolean flag's value (--tls, --tls=false)."""
    v = value.lower()
    if v in ("1", "t", "true"):
        return True
    if v in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}")


def add_daemon_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-H", "--host", dest="hosts", action="append",
                   help="daemon socket(s) to connect to (unix:///path or tcp://host:port)")
    p.add_argument("--data-root", dest="data_root", help="root directory of persistent state")
    p.add_argument("--exec-root", dest="exec_root", help="root directory for execution state files")
    p.add_argument("-p", "--pidfile", dest="pidfile", help="path to use for the daemon PID file")
    p.add_argument("--config-file", dest="config_file", default=None, help="daemon configuration file")
    p.add_argument("-l", "--log-level", dest="log_level",
                   choices=["debug", "info", "warn", "error", "fatal"], help="logging level")
    p.add_argument("-D", "--debug", dest="debug", action="store_const", const=True, help="debug mode")
    p.add_argument("--cgroup-parent", dest="cgroup_parent", help="parent cgroup for all containers")
    p.add_argument("-G", "--group", dest="group", help="group for the unix socket")
    p.add_argument("--log-driver", dest="log_driver", help="default driver for container logs")
    p.add_argument("--log-opt", dest="log_opts", action="append", help="default log driver options (k=v)")
    p.add_argument("-b", "--bridge", dest="bridge", help="device of the default bridge network (none: no bridge)")
    p.add_argument("--bip", dest="bip", help="address and prefix of the default bridge, e.g. 172.17.0.1/16")
    p.add_argument("--default-address-pool", dest="default_address_pools", action="append",
                   help="subnet pool for networks: base=10.10.0.0/16,size=24")
    p.add_argument("--icc", dest="icc", type=lambda v: v.lower() in ("1", "true", "yes"), nargs="?", const=True,
                   help="inter-container traffic on the default bridge (--icc=false to cut it)")
    p.add_argument("--mtu", dest="mtu", type=int, help="MTU of the default bridge network's interfaces")
    p.add_argument("--insecure-registry", dest="insecure_registries", action="append",
                   help="registry (host:port or CIDR) reached over plain http or unverified TLS")
    p.add_argument("--registry-mirror", dest="registry_mirrors", action="append",
                   help="preferred mirror of docker.io for pulls")
    p.add_argument("--seccomp-profile", dest="seccomp_profile",
                   help='path to seccomp profile; "unconfined" to disable the default seccomp profile')
    p.add_argument("--no-new-privileges", dest="no_new_privileges", action="store_const", const=True,
                   help="set no-new-privileges by default for new containers")
    p.add_argument("--tls", dest="tls", type=_flag_bool, nargs="?", const=True,
                   help="use TLS; implied by --tlsverify (--tls=false: plain TCP off loopback, insecure)")
    p.add_argument("--tlsverify", dest="tlsverify", type=_flag_bool, nargs="?", const=True,
                   help="use TLS and require a client certificate signed by --tlscacert")
    p.add_argument("--tlscacert", dest="tlscacert", help=f"trust certs signed only by this CA "
                   f"(default {DEFAULT_CERT_DIR}/ca.pem)")
    p.add_argument("--tlscert", dest="tlscert", help=f"path to TLS certificate file "
                   f"(default {DEFAULT_CERT_DIR}/server-cert.pem)")
    p.add_argument("--tlskey", dest="tlskey", help=f"path to TLS key file (default {DEFAULT_CERT_DIR}/server-key.pem)")
    p.add_argument("--read-header-timeout", dest="read_header_timeout", type=float, metavar="SECONDS",
                   help="close a connection whose request headers take longer (default 30; 0: no limit)")
    p.add_argument("--max-connections-per-client", dest="max_connections_per_client", type=int, metavar="N",
                   help="open connections one client address (or non-root user on a unix socket) may hold "
                        "(default 512; 0: no cap)")
    p.add_argument("--seed-busybox", dest="seed_busybox", action="store_const", const=True,
                   help="create busybox:latest from the host's busybox-static when it is missing")


def _convert(name: str, value: Any) -> Any:
    if name == "hosts":
        if isinstance(value, str):
            value = [value]
        return tuple(value)
    if name in ("data_root", "exec_root", "pidfile", "tlscacert", "tlscert", "tlskey"):
        if not isinstance(value, str | Path) or not str(value):
            raise ConfigError(f"{FILE_KEYS[name]} must be a path")
        return Path(value)
    if name in ("tls", "tlsverify"):
        if not isinstance(value, bool):
            raise ConfigError(f"{FILE_KEYS[name]} must be true or false")
        return value
    if name in ("debug", "seed_busybox", "icc", "no_new_privileges"):
        return bool(value)
    if name in ("read_header_timeout", "max_connections_per_client"):
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < float("inf") or (
                name == "max_connections_per_client" and value != int(value)):
            raise ConfigError(f"{FILE_KEYS[name]} must be a number of "
                              f"{'seconds' if name == 'read_header_timeout' else 'connections'}, 0 or more: {value}")
        return float(value) if name == "read_header_timeout" else int(value)
    if name == "mtu":
        if not isinstance(value, int) or isinstance(value, bool) or not (value == 0 or 68 <= value <= 65535):
            raise ConfigError(f"invalid MTU: {value}")
        return value
    if name in ("insecure_registries", "registry_mirrors"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{FILE_KEYS[name]} must be a list of strings")
        return tuple(value)
    if name == "default_address_pools":
        pools = []
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):  # --default-address-pool base=...,size=24
                item = dict(kv.split("=", 1) for kv in item.split(",") if "=" in kv)
            if not isinstance(item, dict) or "base" not in item or "size" not in item:
                raise ConfigError(f"invalid default-address-pools entry: {item}")
            pools.append({"base": str(item["base"]), "size": int(item["size"])})
        return tuple(pools)
    if name == "log_opts":
        if isinstance(value, list):  # --log-opt k=v, repeated
            value = dict(item.split("=", 1) for item in value if "=" in item)
        if not isinstance(value, dict):
            raise ConfigError("log-opts must be a map of strings")
        return {str(k): str(v) for k, v in value.items()}
    return str(value)


def go_format(value: Any) -> str:
    """A value as dockerd's %v prints it in its messages (true, [a b])."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    return str(value)


def resolve(args: argparse.Namespace) -> DaemonConfig:
    """Flags over daemon.json over defaults; the same setting in both is an error, as in dockerd."""
    file_values: dict[str, Any] = {}
    path = Path(args.config_file) if args.config_file else DEFAULT_CONFIG_FILE
    if args.config_file or path.exists():
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"unable to configure the Servin daemon with file {path}: no such file") from None
        except ValueError as exc:
            raise ConfigError(f"unable to configure the Servin daemon with file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"unable to configure the Servin daemon with file {path}: not a JSON object")
        known = {v: k for k, v in FILE_KEYS.items()}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unable to configure the Servin daemon with file {path}: the following "
                              "directives don't match any configuration option: " + ", ".join(unknown))
        file_values = {known[k]: v for k, v in data.items()}
    conflicts = []
    values: dict[str, Any] = {}
    for name in FILE_KEYS:
        flag_value = getattr(args, name, None)
        if flag_value is not None and name in file_values:
            conflicts.append(f"{FILE_KEYS[name]}: (from flag: {go_format(flag_value)}, "
                             f"from file: {go_format(file_values[name])})")
        chosen = flag_value if flag_value is not None else file_values.get(name)
        if chosen is not None:
            values[name] = _convert(name, chosen)
    if conflicts:
        raise ConfigError(f"unable to configure the Servin daemon with file {path}: the following directives "
                          "are specified both as a flag and in the configuration file: " + ", ".join(conflicts))
    if values.get("log_level") == "debug":
        values["debug"] = True
    if values.get("tls") is False and values.get("tlsverify"):
        raise ConfigError("--tls=false and --tlsverify contradict each other: --tlsverify turns TLS on")
    cfg = DaemonConfig(**values)
    for h in cfg.hosts:
        if not (h.startswith("unix://") or h.startswith("tcp://") or h.startswith("fd://")):
            raise ConfigError(f"invalid daemon host address: {h}")
    hosts = tuple(with_port(h, cfg.tls_on) if h.startswith("tcp://") else h for h in cfg.hosts)
    for h in hosts:
        if h.startswith("tcp://") and not cfg.tls_on and cfg.tls is None and not is_loopback(tcp_address(h)[0]):
            raise ConfigError(
                f"refusing to listen on {h} without TLS: anyone who can reach it is root on this host. "
                "Secure it with --tlsverify (client certificates; `servin certs generate "
                f"{DEFAULT_CERT_DIR}` makes them), or listen on 127.0.0.1 or a unix socket; to accept the "
                'risk, pass --tls=false (daemon.json: "tls": false)')
    return dataclasses.replace(cfg, hosts=hosts)


def tcp_address(host: str) -> tuple[str, int]:
    """(address, port) of a normalized tcp://ADDR:PORT host; IPv6 addresses lose their brackets."""
    h, _, p = host[len("tcp://"):].rpartition(":")
    return h.strip("[]"), int(p)


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def with_port(host: str, tls: bool) -> str:
    """tcp://HOST[:PORT] with dockerd's defaults: 127.0.0.1, and 2376 with TLS or 2375 without."""
    rest = host[len("tcp://"):].rstrip("/")
    if rest.startswith("["):
        addr, _, tail = rest[1:].partition("]")
        addr, port = f"[{addr}]", tail.removeprefix(":")
    elif rest.count(":") == 1:
        addr, port = rest.split(":")
    else:
        addr, port = rest, ""
    if not port:
        port = str(DEFAULT_TLS_PORT if tls else DEFAULT_PLAIN_PORT)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"invalid daemon host address: {host}: bad port {port!r}")
    return f"tcp://{addr or '127.0.0.1'}:{port}"


