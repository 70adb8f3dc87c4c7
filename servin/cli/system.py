"""`servin version` and `servin info`, printed as `docker version` and `docker info` print theirs."""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import datetime
from typing import Any

from servin import __version__
from servin.cli import render
from servin.client import APIClient, APIError, DaemonUnreachable


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    version = sub.add_parser("version", help="the client's and the daemon's versions")
    version.add_argument("--format", choices=("text", "json"), default="text",
                         help="text, or json: {\"Client\": ..., \"Server\": ...} on one line")
    version.set_defaults(run=show_version)
    info = sub.add_parser("info", help="a summary of the daemon and its host")
    info.add_argument("--format", choices=("text", "json"), default="text",
                      help="text, or json: the daemon's /info answer as it is")
    info.set_defaults(run=show_info)


def client_facts(client: APIClient) -> dict[str, str]:
    return {"Version": __version__, "PythonVersion": platform.python_version(),
            "Os": platform.system().lower(), "Arch": render.go_arch(), "Host": client.base_url}


def show_version(client: APIClient, args: argparse.Namespace) -> int:
    mine = client_facts(client)
    try:
        server = client.version()
    except (APIError, DaemonUnreachable):
        if args.format == "json":
            render.json_line(sys.stdout, {"Client": mine, "Server": None})
        else:
            _client_block(mine)
        raise  # the error on stderr as the docker CLI prints it, after what the client knows
    if args.format == "json":
        render.json_line(sys.stdout, {"Client": mine, "Server": server})
        return 0
    _client_block(mine)
    sys.stdout.write("\n")
    _server_block(server)
    return 0


def _client_block(c: dict[str, str]) -> None:
    sys.stdout.write("Client: Servin\n")
    render.fields(sys.stdout, [("Version", c["Version"]), ("Python version", c["PythonVersion"]),
                               ("OS/Arch", f"{c['Os']}/{c['Arch']}"), ("Host", c["Host"])], indent=1)


def _server_block(v: dict[str, Any]) -> None:
    platform_name = (v.get("Platform") or {}).get("Name", "")
    sys.stdout.write(f"Server: {platform_name}".rstrip() + "\n")
    components = v.get("Components") or [{"Name": "Engine", "Version": v.get("Version", ""), "Details": v}]
    for comp in components:
        details = comp.get("Details") or {}
        sys.stdout.write(f" {comp.get('Name', '')}:\n")
        if comp.get("Name") == "Engine":
            render.fields(sys.stdout, _engine_fields(comp.get("Version", ""), details), indent=2)
        else:
            render.fields(sys.stdout, [("Version", comp.get("Version", "")), *sorted(details.items())], indent=2)


def _engine_fields(version: str, d: dict[str, Any]) -> list[tuple[str, Any]]:
    runtime = str(d.get("GoVersion", ""))
    return [("Version", version),
            ("API version", f"{d.get('ApiVersion', '')} (minimum version {d.get('MinAPIVersion', '')})"),
            ("Python version" if runtime.startswith("python") else "Go version", runtime),
            ("Git commit", d.get("GitCommit", "")),
            ("Built", _ansic(str(d.get("BuildTime", "")))),
            ("OS/Arch", f"{d.get('Os', '')}/{d.get('Arch', '')}"),
            ("Experimental", str(d.get("Experimental", "false")).lower())]


def _ansic(text: str) -> str:
    """Go's time.ANSIC, as `docker version` shows the build time."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return text
    return f"{t:%a %b} {t.day:2d} {t:%H:%M:%S %Y}"


def show_info(client: APIClient, args: argparse.Namespace) -> int:
    if args.format == "json":
        render.json_line(sys.stdout, client.info())
        return 0
    c = client_facts(client)
    sys.stdout.write(f"Client:\n Version:    {c['Version']}\n Host:       {c['Host']}\n\n")
    info = client.info()
    sys.stdout.write("Server:\n" + "".join(line + "\n" for line in server_lines(info)))
    for warning in info.get("Warnings") or []:
        sys.stderr.write(f"{warning}\n")
    return 0


def server_lines(i: dict[str, Any]) -> list[str]:
    """`docker info`'s Server section, from /info."""
    out = [f" Containers: {i.get('Containers', 0)}", f"  Running: {i.get('ContainersRunning', 0)}",
           f"  Paused: {i.get('ContainersPaused', 0)}", f"  Stopped: {i.get('ContainersStopped', 0)}",
           f" Images: {i.get('Images', 0)}",
           f" Server Version: {i.get('ServerVersion', '')}",
           f" Storage Driver: {i.get('Driver', '')}",
           *(f"  {k}: {v}" for k, v in i.get("DriverStatus") or []),
           f" Logging Driver: {i.get('LoggingDriver', '')}",
           f" Cgroup Driver: {i.get('CgroupDriver', '')}",
           f" Cgroup Version: {i.get('CgroupVersion', '')}",
           " Plugins:",
           *(f"  {kind}: {' '.join(names)}" for kind, names in (i.get("Plugins") or {}).items() if names),
           f" Swarm: {(i.get('Swarm') or {}).get('LocalNodeState', '')}",
           f" Runtimes: {' '.join(sorted(i.get('Runtimes') or {}))}",
           f" Default Runtime: {i.get('DefaultRuntime', '')}",
           " Security Options:"]
    for opt in i.get("SecurityOptions") or []:
        kv = dict(part.split("=", 1) for part in opt.split(",") if "=" in part)
        out.append(f"  {kv.pop('name', opt)}")
        out += [f"   {k.capitalize()}: {v}" for k, v in kv.items()]
    out += [f" Kernel Version: {i.get('KernelVersion', '')}",
            f" Operating System: {i.get('OperatingSystem', '')}",
            f" OSType: {i.get('OSType', '')}",
            f" Architecture: {i.get('Architecture', '')}",
            f" CPUs: {i.get('NCPU', 0)}",
            f" Total Memory: {render.bytes_size(i.get('MemTotal') or 0)}",
            f" Name: {i.get('Name', '')}",
            f" ID: {i.get('ID', '')}",
            f" Docker Root Dir: {i.get('DockerRootDir', '')}",
            f" Debug Mode: {_bool(i.get('Debug'))}",
            f" Experimental: {_bool(i.get('ExperimentalBuild'))}"]
    registry = i.get("RegistryConfig") or {}
    insecure = [*(registry.get("InsecureRegistryCIDRs") or []),
                *(name for name, c in (registry.get("IndexConfigs") or {}).items() if not c.get("Secure", True))]
    if insecure:
        out += [" Insecure Registries:", *(f"  {r}" for r in insecure)]
    if registry.get("Mirrors"):
        out += [" Registry Mirrors:", *(f"  {m}" for m in registry["Mirrors"])]
    out.append(f" Live Restore Enabled: {_bool(i.get('LiveRestoreEnabled'))}")
    return out


def _bool(v: Any) -> str:
    return str(bool(v)).lower()
