"""Daemon configuration: dockerd's flags and daemon.json keys for the same things."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin.access.durations import Rate
from servin.daemon.accessconfig import ACCESS_KEYS, add_access_flags, convert_access
from servin.errors import InvalidArgument
from servin.network.ipam import parse_fixed_cidr_v6

DEFAULT_SOCKET = "unix:///run/servin/servin.sock"
DEFAULT_MANAGEMENT_HOST = "tcp://127.0.0.1:8080"  # the management API's own listener (its reference's base URL)
DEFAULT_CONFIG_FILE = Path("/etc/servin/daemon.json")
# dockerd reads its TLS files from ~/.docker (DOCKER_CERT_PATH); Servin's live beside daemon.json, in the
# names `servin certs generate` writes, so `servin certs generate /etc/servin` is enough.
DEFAULT_CERT_DIR = DEFAULT_CONFIG_FILE.parent
DEFAULT_TLS_PORT, DEFAULT_PLAIN_PORT = 2376, 2375
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")  # dockerd's --log-level help; trace and panic not served
# dockerd's, as registry/pull.py and push.py (not imported: the client commands load this module, not the engine)
DEFAULT_MAX_CONCURRENT_DOWNLOADS, DEFAULT_MAX_CONCURRENT_UPLOADS = 3, 5
# go-units' ulimitNameMapping (`as` is left out there too)
ULIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
                "rtprio", "rttime", "sigpending", "stack")


class ConfigError(Exception):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DefaultUlimit:
    """One of default-ulimits (the engine's core.model.Ulimit, made in daemon/wiring.py)."""

    name: str
    soft: int  # -1: unlimited
    hard: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonConfig:
    hosts: tuple[str, ...] = (DEFAULT_SOCKET,)
    management_hosts: tuple[str, ...] = (DEFAULT_MANAGEMENT_HOST,)  # /api/ only; () turns it off
    data_root: Path = Path("/var/lib/servin")
    exec_root: Path = Path("/run/servin")
    pidfile: Path = Path("/run/servin/servin.pid")
    log_level: str = "info"
    debug: bool = False
    experimental: bool = False  # dockerd's experimental features (docker build --squash)
    cgroup_parent: str = "servin"
    group: str = ""  # group owning the unix socket; "" = root's
    seed_busybox: bool = False  # load busybox:latest from the host's busybox-static if missing
    log_driver: str = "json-file"
    log_opts: dict[str, str] | None = None
    bridge: str = "servin0"  # the default bridge network's device ("none": containers get no bridge)
    bip: str = ""  # its address and prefix, e.g. 172.17.0.1/16 ("" = Docker's default)
    default_address_pools: tuple[dict[str, Any], ...] | None = None  # [{"base": "...", "size": 24}]
    icc: bool = True
    ipv6: bool = False  # IPv6 on the default bridge
    fixed_cidr_v6: str = ""  # its IPv6 subnet ("" = one of the IPv6 pools)
    mtu: int = 0  # the default bridge's MTU (0: 1500)
    insecure_registries: tuple[str, ...] = ()  # host[:port] or CIDR; loopback is always insecure
    registry_mirrors: tuple[str, ...] = ()  # mirrors of docker.io, tried first for pulls
    seccomp_profile: str = ""  # a profile's path, "unconfined", or "" / "builtin": Docker's default
    no_new_privileges: bool = False  # no_new_privs for every new container unless its SecurityOpt says otherwise
    tls: bool | None = None  # None: not said; False (--tls=false) is needed for plain TCP off loopback
    tlsverify: bool = False  # clients need a certificate signed by tlscacert; set at all, it turns tls on
    tlscacert: Path = DEFAULT_CERT_DIR / "ca.pem"
    tlscert: Path = DEFAULT_CERT_DIR / "server-cert.pem"
    tlskey: Path = DEFAULT_CERT_DIR / "server-key.pem"
    # who must authenticate where, how often they may call, whose tokens count, the audit log (accessconfig.py)
    auth_tcp: str = "required"
    auth_unix: str = "none"
    api_rate_limit: Rate = Rate(count=100, per_seconds=1)
    auth_failure_limit: Rate = Rate(count=10, per_seconds=60)
    token_public_keys: tuple[Path, ...] = ()
    token_jwks: Path | None = None
    token_audience: str = "servin"
    token_issuer: str = ""  # "": not checked
    audit_log: Path | None = None  # None: <data-root>/access/audit.log
    audit_log_max_size: int = 100 << 20
    audit_log_max_files: int = 5
    labels: tuple[str, ...] = ()  # key=value, shown by `docker info`
    max_concurrent_downloads: int = DEFAULT_MAX_CONCURRENT_DOWNLOADS  # layers fetched at once by all pulls
    max_concurrent_uploads: int = DEFAULT_MAX_CONCURRENT_UPLOADS  # layers sent at once by all pushes
    default_ulimits: tuple[DefaultUlimit, ...] = ()  # for each container that does not set that ulimit itself
    read_header_timeout: float = 30.0  # seconds a request's headers may take (slowloris); 0: no limit
    max_connections_per_client: int = 512  # per TCP address / non-root UID on a unix socket; 0: no cap

    @property
    def tls_on(self) -> bool:
        return bool(self.tls) or self.tlsverify


# flag dest → daemon.json key (dockerd's names)
FILE_KEYS = {
    "hosts": "hosts", "data_root": "data-root", "exec_root": "exec-root", "pidfile": "pidfile",
    "log_level": "log-level", "debug": "debug", "cgroup_parent": "cgroup-parent", "group": "group",
    "experimental": "experimental",
    "seed_busybox": "seed-busybox", "log_driver": "log-driver", "log_opts": "log-opts",
    "bridge": "bridge", "bip": "bip", "default_address_pools": "default-address-pools", "icc": "icc", "mtu": "mtu",
    "ipv6": "ipv6", "fixed_cidr_v6": "fixed-cidr-v6",
    "insecure_registries": "insecure-registries", "registry_mirrors": "registry-mirrors",
    "seccomp_profile": "seccomp-profile", "no_new_privileges": "no-new-privileges",
    "tls": "tls", "tlsverify": "tlsverify", "tlscacert": "tlscacert", "tlscert": "tlscert", "tlskey": "tlskey",
    **ACCESS_KEYS, "management_hosts": "management-hosts",
    "labels": "labels", "max_concurrent_downloads": "max-concurrent-downloads",
    "max_concurrent_uploads": "max-concurrent-uploads", "default_ulimits": "default-ulimits",
    "read_header_timeout": "read-header-timeout", "max_connections_per_client": "max-connections-per-client",
}


def flag_bool(value: str) -> bool:
    """A Go boolean flag's value (--tls, --tls=false)."""
    v = value.lower()
    if v in ("1", "t", "true"):
        return True
    if v in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}")


def _ulimit_flag(value: str) -> DefaultUlimit:
    try:
        return parse_ulimit(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_daemon_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-H", "--host", dest="hosts", action="append",
                   help="daemon socket(s) to connect to (unix:///path or tcp://host:port)")
    p.add_argument("--data-root", dest="data_root", help="root directory of persistent state")
    p.add_argument("--exec-root", dest="exec_root", help="root directory for execution state files")
    p.add_argument("-p", "--pidfile", dest="pidfile", help="path to use for the daemon PID file")
    p.add_argument("--config-file", dest="config_file", default=None, help="daemon configuration file")
    p.add_argument("-l", "--log-level", dest="log_level", help='logging level ("debug"|"info"|"warn"|"error"|"fatal")')
    p.add_argument("-D", "--debug", dest="debug", action="store_const", const=True, help="debug mode")
    p.add_argument("--experimental", dest="experimental", action="store_const", const=True,
                   help="enable experimental features")
    p.add_argument("--cgroup-parent", dest="cgroup_parent", help="parent cgroup for all containers")
    p.add_argument("-G", "--group", dest="group", help="group for the unix socket")
    p.add_argument("--management-host", dest="management_hosts", action="append",
                   help=f"the management API's own listener (default {DEFAULT_MANAGEMENT_HOST}; empty: none)")
    p.add_argument("--log-driver", dest="log_driver", help="default driver for container logs")
    p.add_argument("--log-opt", dest="log_opts", action="append", help="default log driver options (k=v)")
    p.add_argument("-b", "--bridge", dest="bridge", help="device of the default bridge network (none: no bridge)")
    p.add_argument("--bip", dest="bip", help="address and prefix of the default bridge, e.g. 172.17.0.1/16")
    p.add_argument("--default-address-pool", dest="default_address_pools", action="append",
                   help="subnet pool for networks: base=10.10.0.0/16,size=24")
    p.add_argument("--icc", dest="icc", type=lambda v: v.lower() in ("1", "true", "yes"), nargs="?", const=True,
                   help="inter-container traffic on the default bridge (--icc=false to cut it)")
    p.add_argument("--ipv6", dest="ipv6", type=flag_bool, nargs="?", const=True, help="IPv6 on the default bridge")
    p.add_argument("--fixed-cidr-v6", dest="fixed_cidr_v6", help="IPv6 subnet of the default bridge network")
    p.add_argument("--mtu", dest="mtu", type=int, help="MTU of the default bridge network's interfaces")
    p.add_argument("--insecure-registry", dest="insecure_registries", action="append",
                   help="registry (host:port or CIDR) reached over plain http or unverified TLS")
    p.add_argument("--registry-mirror", dest="registry_mirrors", action="append",
                   help="preferred mirror of docker.io for pulls")
    p.add_argument("--seccomp-profile", dest="seccomp_profile",
                   help='path to seccomp profile; "unconfined" to disable the default seccomp profile')
    p.add_argument("--no-new-privileges", dest="no_new_privileges", action="store_const", const=True,
                   help="set no-new-privileges by default for new containers")
    p.add_argument("--tls", dest="tls", type=flag_bool, nargs="?", const=True,
                   help="use TLS, verifying clients unless --tlsverify=false; implied by --tlsverify "
                   "(--tls=false: plain TCP off loopback, insecure)")
    p.add_argument("--tlsverify", dest="tlsverify", type=flag_bool, nargs="?", const=True,
                   help="use TLS and require a client certificate signed by --tlscacert (=false: TLS without it)")
    p.add_argument("--tlscacert", dest="tlscacert", help=f"trust certs signed only by this CA "
                   f"(default {DEFAULT_CERT_DIR}/ca.pem)")
    p.add_argument("--tlscert", dest="tlscert", help=f"path to TLS certificate file "
                   f"(default {DEFAULT_CERT_DIR}/server-cert.pem)")
    p.add_argument("--tlskey", dest="tlskey", help=f"path to TLS key file (default {DEFAULT_CERT_DIR}/server-key.pem)")
    add_access_flags(p)
    p.add_argument("--label", dest="labels", action="append", metavar="KEY=VALUE",
                   help="set key=value labels to the daemon (repeatable)")
    p.add_argument("--max-concurrent-downloads", dest="max_concurrent_downloads", type=int, metavar="N",
                   help=f"set the max concurrent downloads (default {DEFAULT_MAX_CONCURRENT_DOWNLOADS})")
    p.add_argument("--max-concurrent-uploads", dest="max_concurrent_uploads", type=int, metavar="N",
                   help=f"set the max concurrent uploads (default {DEFAULT_MAX_CONCURRENT_UPLOADS})")
    p.add_argument("--default-ulimit", dest="default_ulimits", action="append", metavar="NAME=SOFT[:HARD]",
                   type=_ulimit_flag,
                   help="default ulimits for containers, e.g. nofile=1024:2048 (repeatable)")
    p.add_argument("--read-header-timeout", dest="read_header_timeout", type=float, metavar="SECONDS",
                   help="close a connection whose request headers take longer (default 30; 0: no limit)")
    p.add_argument("--max-connections-per-client", dest="max_connections_per_client", type=int, metavar="N",
                   help="open connections one client address (or non-root user on a unix socket) may hold "
                        "(default 512; 0: no cap)")
    p.add_argument("--seed-busybox", dest="seed_busybox", action="store_const", const=True,
                   help="create busybox:latest from the host's busybox-static when it is missing")


def _convert(name: str, value: Any) -> Any:
    if name in ACCESS_KEYS:
        try:
            return convert_access(name, value)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if name in ("hosts", "management_hosts"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{FILE_KEYS[name]} must be a list of addresses")
        return tuple(v for v in value if v) if name == "management_hosts" else tuple(value)
    if name in ("data_root", "exec_root", "pidfile", "tlscacert", "tlscert", "tlskey"):
        if not isinstance(value, str | Path) or not str(value):
            raise ConfigError(f"{FILE_KEYS[name]} must be a path")
        return Path(value)
    if name in ("tls", "tlsverify"):
        if not isinstance(value, bool):
            raise ConfigError(f"{FILE_KEYS[name]} must be true or false")
        return value
    if name == "log_level":
        if str(value).lower() not in LOG_LEVELS:
            raise ConfigError(f"invalid logging level: {value}")  # dockerd's words (daemon/config)
        return str(value).lower()
    if name in ("debug", "experimental", "seed_busybox", "icc", "no_new_privileges", "ipv6"):
        return bool(value)
    if name == "fixed_cidr_v6":
        try:
            return str(parse_fixed_cidr_v6(str(value))) if value else ""
        except InvalidArgument as exc:
            raise ConfigError(exc.message) from None
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
    if name == "labels":
        return labels(value)
    if name in ("max_concurrent_downloads", "max_concurrent_uploads"):
        return _concurrency(name, value)
    if name == "default_ulimits":
        return default_ulimits(value)
    if name == "log_opts":
        if isinstance(value, list):  # --log-opt k=v, repeated
            value = dict(item.split("=", 1) for item in value if "=" in item)
        if not isinstance(value, dict):
            raise ConfigError("log-opts must be a map of strings")
        return {str(k): str(v) for k, v in value.items()}
    return str(value)


def labels(value: Any) -> tuple[str, ...]:
    """dockerd's opts.ValidateLabel for each, then GetConflictFreeLabels: a key given twice must
    have the same value (kept once)."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError("labels must be a list of strings")
    seen: dict[str, str] = {}
    for label in value:
        if "=" not in label:
            raise ConfigError(f"bad attribute format: {label}")
        if label.lower().startswith(("com.docker.", "io.docker.", "org.dockerproject.")):
            raise ConfigError(f"label {label} is not allowed: the namespaces com.docker.*, io.docker.*, and "
                              "org.dockerproject.* are reserved for internal use")
        key, _, val = label.partition("=")
        if key in seen and seen[key] != val:
            raise ConfigError(f"conflict labels for {key}={val} and {key}={seen[key]}")
        seen[key] = val
    return tuple(f"{k}={v}" for k, v in seen.items())


def _concurrency(name: str, value: Any) -> int:
    """max-concurrent-downloads/uploads: negative is refused as dockerd's Validate; 0 is the default,
    as dockerd's reload takes it."""
    what = "downloads" if name == "max_concurrent_downloads" else "uploads"
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{FILE_KEYS[name]} must be an integer")
    if value < 0:
        raise ConfigError(f"invalid max concurrent {what}: {value}")
    if value == 0:
        return DEFAULT_MAX_CONCURRENT_DOWNLOADS if what == "downloads" else DEFAULT_MAX_CONCURRENT_UPLOADS
    return value


def parse_ulimit(text: str) -> DefaultUlimit:
    """go-units' ParseUlimit: NAME=SOFT[:HARD] (HARD defaults to SOFT; -1 is unlimited)."""
    name, eq, limits = text.partition("=")
    if not eq:
        raise ConfigError(f"invalid ulimit argument: {text}")
    parts = limits.split(":")
    if len(parts) > 2:
        raise ConfigError(f"too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`")
    try:
        soft, hard = int(parts[0]), int(parts[-1])
    except ValueError:
        raise ConfigError(f"invalid ulimit argument: {text}: the limits must be integers") from None
    return _ulimit(name, soft, hard)


def _ulimit(name: str, soft: int, hard: int) -> DefaultUlimit:
    if name not in ULIMIT_NAMES:
        raise ConfigError(f"invalid ulimit type: {name}")
    if hard != -1:
        if soft == -1:
            raise ConfigError("ulimit soft limit must be less than or equal to hard limit: "
                              f"soft: -1 (unlimited), hard: {hard}")
        if soft > hard:
            raise ConfigError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return DefaultUlimit(name=name, soft=soft, hard=hard)


def default_ulimits(value: Any) -> tuple[DefaultUlimit, ...]:
    """`--default-ulimit nofile=1024:2048` (parsed; repeated, the last of a name wins), or daemon.json's map
    as dockerd writes it: {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}} (Go's decoder
    matches the field names in any case; Name may be left out)."""
    found: dict[str, DefaultUlimit] = {}
    if isinstance(value, list) and all(isinstance(u, DefaultUlimit) for u in value):  # the flags, parsed
        found = {u.name: u for u in value}
    elif isinstance(value, dict):
        for key, entry in value.items():
            fields_ = {str(k).lower(): v for k, v in entry.items()} if isinstance(entry, dict) else {}
            soft, hard = fields_.get("soft"), fields_.get("hard")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (soft, hard)):
                raise ConfigError(f'default-ulimits: {key} must be {{"Name": "{key}", "Soft": N, "Hard": N}}')
            if fields_.get("name", key) != key:
                raise ConfigError(f"default-ulimits: the entry {key} names {fields_['name']}")
            assert isinstance(soft, int) and isinstance(hard, int)
            found[key] = _ulimit(key, soft, hard)
    else:
        raise ConfigError("default-ulimits must be a map of ulimits")
    return tuple(found[name] for name in sorted(found))


def ulimit_text(u: DefaultUlimit) -> str:
    """go-units' Ulimit.String: nofile=1024:2048."""
    return f"{u.name}={u.soft}:{u.hard}"


def go_format(value: Any) -> str:
    """A value as dockerd's %v prints it in its messages (true, [a b])."""
    if isinstance(value, DefaultUlimit):
        return ulimit_text(value)
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
    # dockerd (daemon/command): tlsverify said at all, true or false, turns TLS on; --tls alone verifies clients
    if "tlsverify" in values:
        if values.get("tls") is False:
            raise ConfigError("--tls=false and --tlsverify contradict each other: --tlsverify (true or false) "
                              "turns TLS on")
        values["tls"] = True
    elif values.get("tls"):
        values["tlsverify"] = True
    cfg = DaemonConfig(**values)
    if cfg.fixed_cidr_v6 and not cfg.ipv6:
        raise ConfigError("fixed-cidr-v6 needs ipv6 (--ipv6, or \"ipv6\": true in daemon.json)")
    for h in cfg.hosts:
        if not (h.startswith("unix://") or h.startswith("tcp://") or h.startswith("fd://")):
            raise ConfigError(f"invalid daemon host address: {h}")
    for h in cfg.management_hosts:
        if not (h.startswith("unix://") or h.startswith("tcp://")):
            raise ConfigError(f"invalid management-host address: {h}")
    hosts = tuple(with_port(h, cfg.tls_on) if h.startswith("tcp://") else h for h in cfg.hosts)
    management = tuple(with_port(h, cfg.tls_on) if h.startswith("tcp://") else h for h in cfg.management_hosts)
    for h in hosts + management:
        if h.startswith("tcp://") and not cfg.tls_on and cfg.tls is None and not is_loopback(tcp_address(h)[0]):
            raise ConfigError(
                f"refusing to listen on {h} without TLS: anyone who can reach it is root on this host. "
                "Secure it with --tlsverify (client certificates; `servin certs generate "
                f"{DEFAULT_CERT_DIR}` makes them), or listen on 127.0.0.1 or a unix socket; to accept the "
                'risk, pass --tls=false (daemon.json: "tls": false)')
    return dataclasses.replace(cfg, hosts=hosts, management_hosts=management)


# a TCP listener with TLS but no client certificate asked (--tlsverify=false) off loopback, logged at start
UNVERIFIED_TLS_WARNING = (
    "Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone "
    "who has access to your network. %s speaks TLS but asks clients for no certificate (--tlsverify=false): "
    "anyone who can reach it is root on this host. Require client certificates with --tlsverify "
    f"(`servin certs generate {DEFAULT_CERT_DIR}` makes them), or listen on 127.0.0.1 or a unix socket.")


def open_to_anyone(cfg: DaemonConfig, host: str) -> bool:
    """Whether TLS host `host` lets in whoever reaches it: off loopback with no client certificate asked.
    (Plain TCP off loopback is refused unless --tls=false, and warned about where it is served.)"""
    # issue 12 §2: once keys or tokens can be required on TCP, a listener that requires them is not open
    # (return False here when the auth setting says so for this host)
    return (host.startswith("tcp://") and cfg.tls_on and not cfg.tlsverify
            and not is_loopback(tcp_address(host)[0]))


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


