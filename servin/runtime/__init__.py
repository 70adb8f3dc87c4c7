"""OCI bundle -> running, supervised container (servin-shim). See plan.py for the plan format."""

from servin.runtime.runtime import Runtime
from servin.runtime.shim import ContainerNotRunning, ExecSession, ExitStatus, Shim, ShimError, StartFailed

__all__ = [
    "ContainerNotRunning", "ExecSession", "ExitStatus", "Runtime", "Shim", "ShimError", "StartFailed",
]  # fmt: skip
