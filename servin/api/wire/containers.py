"""Docker JSON ⇄ container domain objects (create body, inspect, list)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from servin import errors, units
from servin.api.wire import fields as wire_fields
from servin.api.wire import versions
from servin.api.wire.health import health_config_json, parse_healthcheck
from servin.api.wire import mounts as wire_mounts
from servin.api.wire import ports as wire_ports
from servin.api.wire import request_body
from servin.api.wire import resources as wire_resources
from servin.api.wire import security as wire_security
from servin.api.wire.netsettings import main_mac_address, network_settings, parse_endpoints
from servin.api.wire.schemas import CREATE_REQUEST
from servin.core.logs import parse_time_ns
from servin.core.spec import MASKED_PATHS, READONLY_PATHS
from servin.images.manifests import go_descriptor
from servin.core.model import (
    Container,
    ContainerConfig,
    EndpointConfig,
    HostConfig,
    MountPoint,
    RestartPolicy,
    Status,
    Ulimit,
)

def _strs(value: Any, field: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidArgument(f"invalid {field}: must be a list of strings")
    return tuple(value)


def int_field(d: dict[str, Any], key: str, default: int = 0) -> int:
    v = d.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise errors.InvalidArgument(f"invalid value for {key}: {v!r}")
    return int(v)


@request_body(CREATE_REQUEST)
def parse_create_request(body: Any) -> tuple[ContainerConfig, HostConfig, dict[str, EndpointConfig]]:
    """A create body: the container's config, host config and NetworkingConfig's endpoints (by the
    network name or ID they were given under)."""
    config, host = _parse_create(body)
    return config, host, parse_endpoints(body)


def parse_create(body: Any) -> tuple[ContainerConfig, HostConfig]:
    config, host, _ = parse_create_request(body)
    return config, host


def created(cid: str, warnings: Sequence[str]) -> dict[str, Any]:
    """The answer to a create: the engine's warnings, then those of the request's version."""
    return {"Id": cid, "Warnings": [*warnings, *versions.warnings()]}


def _parse_create(body: Any) -> tuple[ContainerConfig, HostConfig]:
    if not isinstance(body, dict):
        raise errors.InvalidArgument("config cannot be empty in order to create a container")
    image = body.get("Image")
    if not image or not isinstance(image, str):
        raise errors.InvalidArgument("config cannot be empty in order to create a container")
    hc = body.get("HostConfig") or {}
    if not isinstance(hc, dict):
        raise errors.InvalidArgument("invalid HostConfig")
    wire_fields.refuse_unimplemented(body)
    labels = body.get("Labels") or {}
    if not isinstance(labels, dict):
        raise errors.InvalidArgument("invalid Labels: must be a map")
    stop_timeout = body.get("StopTimeout")
    config = ContainerConfig(
        image=image,
        cmd=_strs(body.get("Cmd"), "Cmd") or None,
        entrypoint=_strs(body.get("Entrypoint"), "Entrypoint"),
        env=_strs(body.get("Env"), "Env") or (),
        working_dir=body.get("WorkingDir") or "",
        user=body.get("User") or "",
        hostname=body.get("Hostname") or "",
        domainname=body.get("Domainname") or "",
        labels={str(k): str(v) for k, v in labels.items()},
        tty=bool(body.get("Tty")),
        open_stdin=bool(body.get("OpenStdin")),
        stdin_once=bool(body.get("StdinOnce")),
        attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=bool(body.get("AttachStdout")),
        attach_stderr=bool(body.get("AttachStderr")),
        stop_signal=body.get("StopSignal") or "",
        stop_timeout=int(stop_timeout) if isinstance(stop_timeout, int) else None,
        healthcheck=parse_healthcheck(body.get("Healthcheck")),
        exposed_ports=tuple(sorted((body.get("ExposedPorts") or {}).keys())),
        volumes=tuple(sorted((body.get("Volumes") or {}).keys())),
        mac_address=str(body.get("MacAddress") or ""),
    )
    if config.entrypoint == ("",):  # `--entrypoint ""` resets the image's entrypoint
        config = ContainerConfig(**{**_fields(config), "entrypoint": ()})
    rp = hc.get("RestartPolicy") or {}
    log_config = hc.get("LogConfig") or {}
    pids = hc.get("PidsLimit")
    memory, memory_swap = int_field(hc, "Memory"), int_field(hc, "MemorySwap")
    if memory > 0 and memory_swap == 0:  # dockerd's adaptContainerSettings: swap defaults to 2x memory
        memory_swap = memory * 2
    host = HostConfig(
        auto_remove=bool(hc.get("AutoRemove")),
        memory=memory,
        memory_swap=memory_swap,
        nano_cpus=int_field(hc, "NanoCpus"),
        cpu_shares=int_field(hc, "CpuShares"),
        cpu_quota=int_field(hc, "CpuQuota"),
        cpu_period=int_field(hc, "CpuPeriod"),
        cpuset_cpus=hc.get("CpusetCpus") or "",
        cpuset_mems=hc.get("CpusetMems") or "",
        pids_limit=int(pids) if isinstance(pids, int) and pids != 0 else None,
        shm_size=int_field(hc, "ShmSize") or 64 * 1024 * 1024,
        network_mode=hc.get("NetworkMode") or "default",
        port_bindings=wire_ports.parse_port_bindings(hc.get("PortBindings")),
        publish_all_ports=bool(hc.get("PublishAllPorts")),
        restart_policy=RestartPolicy(name=rp.get("Name") or "no",
                                     maximum_retry_count=int(rp.get("MaximumRetryCount") or 0)),
        log_type=log_config.get("Type") or "",  # "" = the daemon's default
        log_config={str(k): str(v) for k, v in (log_config.get("Config") or {}).items()},
        binds=tuple(hc.get("Binds") or ()),
        mounts=wire_mounts.parse_all(hc),
        volumes_from=tuple(hc.get("VolumesFrom") or ()),
        tmpfs={str(k): str(v) for k, v in (hc.get("Tmpfs") or {}).items()},
        readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
        ulimits=_ulimits(hc.get("Ulimits")),
        group_add=tuple(str(g) for g in hc.get("GroupAdd") or ()),
        oom_kill_disable=bool(hc.get("OomKillDisable")),
        init=hc.get("Init") if isinstance(hc.get("Init"), bool) else None,
        pid_mode=hc.get("PidMode") or "",
        uts_mode=hc.get("UTSMode") or "",
        ipc_mode=hc.get("IpcMode") or "",
        cgroupns_mode=hc.get("CgroupnsMode") or "",
        isolation=hc.get("Isolation") or "",
        device_cgroup_rules=tuple(str(r) for r in hc.get("DeviceCgroupRules") or ()),
        volume_driver=hc.get("VolumeDriver") or "",
        extra_hosts=_extra_hosts(hc.get("ExtraHosts")),
        links=_links(hc.get("Links")),
        dns=tuple(str(x) for x in hc.get("Dns") or ()),
        dns_search=tuple(str(x) for x in hc.get("DnsSearch") or ()),
        dns_options=tuple(str(x) for x in hc.get("DnsOptions") or ()),
        console_size=_console_size(hc.get("ConsoleSize")),
        container_id_file=str(hc.get("ContainerIDFile") or ""),
        annotations=_annotations(hc.get("Annotations")),
        **wire_security.host_config_fields(hc),
        **wire_resources.host_config_fields(hc),
    )
    if host.auto_remove and host.restart_policy.name not in ("", "no"):
        raise errors.InvalidArgument("can't create 'AutoRemove' container with restart policy")
    return config, host


def _annotations(raw: Any) -> dict[str, str]:
    """HostConfig.Annotations (API 1.43): dockerd's empty-key check; the runtime's own keys (io.servin.*,
    which steer the supervisor) are not the user's to set."""
    out = {str(k): str(v) for k, v in (raw or {}).items()}
    if "" in out:
        raise errors.InvalidArgument("invalid Annotations: the empty string is not permitted as an annotation key")
    if own := sorted(k for k in out if k.startswith("io.servin.")):
        raise errors.InvalidArgument(f"invalid Annotations: {own[0]}: keys under io.servin. are Servin's own")
    return out


def _console_size(raw: Any) -> tuple[int, int]:
    """[height, width] of the pty a Tty container starts with (the CLI sends the terminal's)."""
    if not raw:
        return (0, 0)
    if not isinstance(raw, list) or len(raw) != 2 or not all(isinstance(n, int) and 0 <= n < 65536 for n in raw):
        raise errors.InvalidArgument(f"invalid ConsoleSize: {raw!r}")
    return (raw[0], raw[1])


def _links(raw: Any) -> tuple[str, ...]:
    """HostConfig.Links: "name:alias" (or "name", alias = name), normalized to "target:alias"."""
    if not raw:
        return ()
    if not isinstance(raw, list):
        raise errors.InvalidArgument("invalid Links: must be a list")
    out = []
    for link in raw:
        target, _, alias = str(link).partition(":")
        target, alias = target.strip("/"), alias.strip("/").rsplit("/", 1)[-1]
        if not target:
            raise errors.InvalidArgument(f"invalid link: {link}")
        out.append(f"{target}:{alias or target}")
    return tuple(out)


def _extra_hosts(raw: Any) -> tuple[str, ...]:
    out = []
    for entry in raw or ():
        name, sep, ip = str(entry).partition(":")
        if not sep or not name or not ip:
            raise errors.InvalidArgument(f"invalid IP address in add-host: {ip!r}")
        if ip != "host-gateway":
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise errors.InvalidArgument(f"invalid IP address in add-host: \"{ip}\"") from None
        out.append(f"{name}:{ip}")
    return tuple(out)


def _ulimits(raw: Any) -> tuple[Ulimit, ...]:
    out = []
    for u in raw or []:
        if not isinstance(u, dict) or not u.get("Name"):
            raise errors.InvalidArgument(f"invalid ulimit: {u!r}")
        soft, hard = int(u.get("Soft", 0)), int(u.get("Hard", 0))
        if soft > hard:
            raise errors.InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        out.append(Ulimit(name=str(u["Name"]), soft=soft, hard=hard))
    return tuple(out)


def _mount_json(m: MountPoint) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": m.type}
    if m.name:
        out["Name"] = m.name
    out.update({"Source": m.source, "Destination": m.destination})
    if m.driver:
        out["Driver"] = m.driver
    out.update({"Mode": m.mode, "RW": m.rw, "Propagation": m.propagation})
    return out


def _fields(obj: Any) -> dict[str, Any]:
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}


def _config_json(c: Container) -> dict[str, Any]:
    cfg = c.config
    return {
        "Hostname": c.resolved_hostname,
        "Domainname": cfg.domainname,
        "User": cfg.user,
        "AttachStdin": cfg.attach_stdin,
        "AttachStdout": cfg.attach_stdout,
        "AttachStderr": cfg.attach_stderr,
        **({"ExposedPorts": {p: {} for p in cfg.exposed_ports}} if cfg.exposed_ports else {}),
        "Tty": cfg.tty,
        "OpenStdin": cfg.open_stdin,
        "StdinOnce": cfg.stdin_once,
        "Env": list(c.resolved_env),
        "Cmd": list(c.resolved_cmd) or None,
        "Image": cfg.image,
        "Volumes": {v: {} for v in cfg.volumes} if cfg.volumes else None,
        "WorkingDir": cfg.working_dir,
        "Entrypoint": list(c.resolved_entrypoint) or None,
        "OnBuild": None,
        **({"Healthcheck": health_config_json(c.healthcheck)} if c.healthcheck else {}),
        "Labels": dict(cfg.labels),
        **({"StopSignal": cfg.stop_signal} if cfg.stop_signal else {}),
        **({"StopTimeout": cfg.stop_timeout} if cfg.stop_timeout is not None else {}),
        **({"MacAddress": mac} if (mac := main_mac_address(c)) else {}),
    }


def _host_config_json(c: Container) -> dict[str, Any]:
    hc = c.host_config
    return {
        "Binds": list(hc.binds) if hc.binds else None,
        "ContainerIDFile": hc.container_id_file,
        "LogConfig": {"Type": hc.log_type, "Config": dict(hc.log_config)},
        "NetworkMode": hc.network_mode,
        "PortBindings": wire_ports.port_bindings_json(hc.port_bindings),
        "RestartPolicy": {"Name": hc.restart_policy.name,
                          "MaximumRetryCount": hc.restart_policy.maximum_retry_count},
        "AutoRemove": hc.auto_remove,
        "VolumeDriver": hc.volume_driver,
        "VolumesFrom": list(hc.volumes_from) if hc.volumes_from else None,
        "CapAdd": list(hc.cap_add) or None,
        "CapDrop": list(hc.cap_drop) or None,
        "CgroupnsMode": hc.cgroupns_mode or "host",
        "Dns": list(hc.dns),
        "DnsOptions": list(hc.dns_options),
        "DnsSearch": list(hc.dns_search),
        "ExtraHosts": list(hc.extra_hosts) or None,
        "GroupAdd": list(hc.group_add) if hc.group_add else None,
        "IpcMode": hc.ipc_mode or "private",
        "Cgroup": "",
        "Links": [f"/{t}:/{c.name}/{a}" for t, _, a in (x.partition(":") for x in hc.links)] or None,
        "OomScoreAdj": hc.oom_score_adj,
        "PidMode": hc.pid_mode,
        "Privileged": hc.privileged,
        "PublishAllPorts": hc.publish_all_ports,
        "ReadonlyRootfs": hc.readonly_rootfs,
        "SecurityOpt": list(hc.security_opt) or None,
        "UTSMode": hc.uts_mode,
        "UsernsMode": hc.userns_mode,
        "ShmSize": hc.shm_size,
        "Runtime": "runc",
        "ConsoleSize": list(hc.console_size),
        "Isolation": hc.isolation,
        "CpuShares": hc.cpu_shares,
        "Memory": hc.memory,
        "NanoCpus": hc.nano_cpus,
        "CgroupParent": "",
        "CpuPeriod": hc.cpu_period,
        "CpuQuota": hc.cpu_quota,
        "CpusetCpus": hc.cpuset_cpus,
        "CpusetMems": hc.cpuset_mems,
        "Devices": [{"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container,
                     "CgroupPermissions": d.cgroup_permissions} for d in hc.devices],
        "DeviceCgroupRules": list(hc.device_cgroup_rules) or None,
        "DeviceRequests": None,
        "KernelMemoryTCP": 0,
        "MemorySwap": hc.memory_swap,
        "OomKillDisable": hc.oom_kill_disable,
        "PidsLimit": hc.pids_limit,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in hc.ulimits] or None,
        **({"Tmpfs": dict(hc.tmpfs)} if hc.tmpfs else {}),
        **({"Init": hc.init} if hc.init is not None else {}),
        "CpuCount": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": _paths(hc.masked_paths, MASKED_PATHS, hc.privileged),
        "ReadonlyPaths": _paths(hc.readonly_paths, READONLY_PATHS, hc.privileged),
        **({"Sysctls": dict(hc.sysctls)} if hc.sysctls else {}),
        **wire_resources.inspect_fields(hc),
        **({"Mounts": mounts} if (mounts := [wire_mounts.mount_json(m) for m in hc.mounts if m.spec]) else {}),
        **({"Annotations": dict(hc.annotations)} if hc.annotations else {}),
    }


def _paths(given: tuple[str, ...] | None, default: tuple[str, ...], privileged: bool) -> list[str] | None:
    """Masked or read-only paths as dockerd records them at create: Docker's defaults unless given,
    none (null) for a privileged container."""
    if given is not None:
        return list(given)
    return None if privileged else list(default)


def _state_json(c: Container) -> dict[str, Any]:
    st = c.state
    return {
        "Status": st.status.value,
        "Running": st.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING),
        "Paused": st.status == Status.PAUSED,
        "Restarting": st.status == Status.RESTARTING,
        "OOMKilled": st.oom_killed,
        "Dead": st.status == Status.DEAD,
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": st.started_at,
        "FinishedAt": st.finished_at,
        **({"Health": {"Status": st.health.status, "FailingStreak": st.health.failing_streak,
                       "Log": [{"Start": r.start, "End": r.end, "ExitCode": r.exit_code, "Output": r.output}
                               for r in st.health.log]}} if st.health else {}),
    }


def config_json(c: Container) -> dict[str, Any]:
    """The container's Config as inspect shows it at the newest version (what a commit starts from)."""
    return _config_json(c)


@versions.answer("ContainerInspect")
def inspect(c: Container, *, bundle: str, log_path: str, exec_ids: list[str] | None = None,
            networks: Sequence[Any] = (), sandbox_key: str = "",
            sizes: tuple[int, int] | None = None) -> dict[str, Any]:
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": list(c.args),
        "State": _state_json(c),
        "Image": c.image_id,
        "ResolvConfPath": f"{bundle}/resolv.conf",
        "HostnamePath": f"{bundle}/hostname",
        "HostsPath": f"{bundle}/hosts",
        "LogPath": log_path,
        "Name": "/" + c.name,
        "RestartCount": c.state.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": c.host_config.apparmor_profile,
        "ExecIDs": list(exec_ids) if exec_ids else None,
        "HostConfig": _host_config_json(c),
        "GraphDriver": {"Name": "overlay2", "Data": {
            "MergedDir": f"{bundle}/rootfs", "UpperDir": f"{bundle}/upper", "WorkDir": f"{bundle}/work"}},
        **({"SizeRw": sizes[0], "SizeRootFs": sizes[1]} if sizes is not None else {}),  # ?size=1 only
        "Mounts": [_mount_json(m) for m in c.mount_points],
        "Config": _config_json(c),
        "NetworkSettings": network_settings(c, networks, sandbox_key),
        **_image_manifest(c),
    }


def _image_manifest(c: Container) -> dict[str, Any]:
    """ImageManifestDescriptor: the OCI descriptor of the image's manifest the container was made from, with
    its platform (dockerd's containerd store; left out when not known)."""
    return {"ImageManifestDescriptor": go_descriptor(c.image_manifest)} if c.image_manifest else {}


def _status_text(c: Container, now_ns: int) -> str:
    st = c.state
    if st.status == Status.CREATED:
        return "Created"
    if st.status in (Status.RUNNING, Status.PAUSED):
        since = human_duration(now_ns - parse_time_ns(st.started_at))
        if st.status == Status.PAUSED:
            return f"Up {since} (Paused)"
        if st.health is not None:
            return f"Up {since} ({'health: starting' if st.health.status == 'starting' else st.health.status})"
        return f"Up {since}"
    if st.status == Status.EXITED:
        return f"Exited ({st.exit_code}) {human_duration(now_ns - parse_time_ns(st.finished_at))} ago"
    if st.status == Status.REMOVING:
        return "Removal In Progress"
    return st.status.value.capitalize()


def human_duration(ns: int) -> str:
    """Docker's units.HumanDuration of a span in nanoseconds."""
    return units.human_duration(ns / 1e9)


@versions.answer("ContainerSummary")
def summary(c: Container, now_ns: int, networks: Sequence[Any] = (),
            sizes: tuple[int, int] | None = None) -> dict[str, Any]:
    """A `docker ps` row; with `sizes` (?size=1) SizeRw and SizeRootFs, each left out when 0 (omitempty)."""
    command = " ".join([c.path, *c.args])
    size_fields = {k: v for k, v in zip(("SizeRw", "SizeRootFs"), sizes or (0, 0), strict=True) if v}
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.config.image,
        "ImageID": c.image_id,
        **_image_manifest(c),
        "Command": command,
        "Created": parse_time_ns(c.created) // 1_000_000_000,
        "Ports": [{"IP": ip, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto}
                  for _n, ep in networks if ep is not None for p in ep.ports
                  for ip in wire_ports.binding_ips(p.host_ip, ep)],
        **size_fields,
        "Labels": dict(c.config.labels),
        "State": c.state.status.value,
        "Status": _status_text(c, now_ns),
        "HostConfig": {"NetworkMode": c.host_config.network_mode,
                       **({"Annotations": dict(c.host_config.annotations)} if c.host_config.annotations else {})},
        "NetworkSettings": {"Networks": network_settings(c, networks)["Networks"]},
        "Mounts": [_mount_json(m) for m in c.mount_points],
        "Health": _health_summary(c),
    }


def _health_summary(c: Container) -> dict[str, Any]:
    """`none` until a healthcheck has a state (dockerd's view.go), else its status and failing streak."""
    h = c.state.health
    return {"Status": h.status if h is not None else "none", "FailingStreak": h.failing_streak if h else 0}
