"""OCI bundle -> running, supervised container (servin-shim). api.py is its face to the core; see
plan.py for the plan the shim executes."""

from servin.runtime.api import AttachStream, ExitStatus, ProcessSession, ProcessSpec, ResourceStats
from servin.runtime.runtime import Runtime
from servin.runtime.shim import ContainerNotRunning, ExecSession, Shim, ShimError, StartFailed

__all__ = [
    "AttachStream", "ContainerNotRunning", "ExecSession", "ExitStatus", "ProcessSession", "ProcessSpec",
    "ResourceStats", "Runtime", "Shim", "ShimError", "StartFailed",
]  # fmt: skip
