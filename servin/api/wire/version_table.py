"""Every difference between the Docker API versions Servin serves, 1.24 to 1.55, as data: answers by the
kind a wire function declares (`@versions.answer`), request bodies by the Go struct they decode into,
query parameters and filters by route, routes by their first version, values that changed. Facts from
moby's api/docs/CHANGELOG.md and daemon/server/router (docker-v29.7.2), summarised in
docker-api-delta-1.41-to-1.55.md; versions.py applies them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from servin.api.wire import compat, endpoint_compat
from servin.api.wire.version_rules import (Adapt, Before, Changed, EmptyOmitted, FilterBefore, Gone, Needs, OneEntry,
                                          Rule, Since, Until, Version)


def _no_placeholders(image: dict[str, Any]) -> dict[str, Any]:
    """Below 1.43 an image without tags or digests lists `<none>` placeholders."""
    if not image.get("RepoTags") and not image.get("RepoDigests"):
        image["RepoTags"], image["RepoDigests"] = ["<none>:<none>"], ["<none>@<none>"]
    return image


def _zero_created(image: dict[str, Any]) -> dict[str, Any]:
    """Below 1.44 an image config without `created` shows Go's zero time."""
    image.setdefault("Created", "0001-01-01T00:00:00Z")
    return image


def _legacy_event(event: dict[str, Any]) -> dict[str, Any]:
    """Below 1.52 container and image events repeat the action and actor as status, id (and from)."""
    if event.get("Type") in ("container", "image"):
        event["status"], event["id"] = event["Action"], event["Actor"]["ID"]
        if event["Type"] == "container":
            event["from"] = event["Actor"]["Attributes"].get("image", "")
    return event


def _no_image_create(event: dict[str, Any]) -> dict[str, Any] | None:
    """Image `create` events (a commit's) came with 1.46: none for older clients."""
    return None if event.get("Type") == "image" and event.get("Action") == "create" else event


def _count_unknown(_count: Any) -> int:
    return -1  # below 1.51 an image summary's Containers is not counted


# container.Config fields an image's config no longer shows from 1.50 (moby's legacyConfigFields)
_IMAGE_CONFIG_1_50 = ("Hostname", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
                      "StdinOnce", "Image", "NetworkDisabled", "MacAddress", "StopTimeout")
# and those omitted when empty from 1.52 (the OCI image config's omitempty)
_IMAGE_CONFIG_1_52 = ("Cmd", "Entrypoint", "Env", "Labels", "OnBuild", "User", "Volumes", "WorkingDir")
# the default bridge's endpoint repeated at the top of NetworkSettings, gone in 1.52
_BRIDGE_TOP_LEVEL = ("Bridge", "HairpinMode", "LinkLocalIPv6Address", "LinkLocalIPv6PrefixLen", "SecondaryIPAddresses",
                     "SecondaryIPv6Addresses", "EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen",
                     "IPAddress", "IPPrefixLen", "IPv6Gateway", "MacAddress")

# answers: by the kind a wire function declares with @answer
RESPONSES: dict[str, tuple[Rule, ...]] = {
    "ImageSummary": (
        Before((1, 43), _no_placeholders),
        Until("VirtualSize", (1, 44)),
        Before((1, 51), _count_unknown, "Containers"),
        Since("Descriptor", (1, 48)),  # Manifests only on request (manifests=1 is read from 1.47)
    ),
    "ImageInspect": (
        Until("VirtualSize", (1, 44)),
        Before((1, 44), _zero_created),
        Until("Container", (1, 45)),
        Until("ContainerConfig", (1, 45)),
        *(Until(f"Config.{name}", (1, 50)) for name in _IMAGE_CONFIG_1_50),
        *(EmptyOmitted(f"Config.{name}", (1, 52)) for name in _IMAGE_CONFIG_1_52),
        *(EmptyOmitted(name, (1, 52)) for name in ("Parent", "Comment", "DockerVersion", "Author")),
        Since("Descriptor", (1, 48)),  # Manifests only on request (manifests=1 is read from 1.48)
        Since("Identity", (1, 53)),
    ),
    "ContainerSummary": (
        Since("ImageManifestDescriptor", (1, 48)),
        Since("HostConfig.Annotations", (1, 46)),
        Since("NetworkSettings.Networks.*.GwPriority", (1, 48)),
        Since("Health", (1, 52)),
    ),
    "ContainerInspect": (
        Since("ImageManifestDescriptor", (1, 48)),
        *(Until(f"NetworkSettings.{name}", (1, 52)) for name in _BRIDGE_TOP_LEVEL),
        Before((1, 45), endpoint_compat.aliases_with_names),
        Since("NetworkSettings.Networks.*.GwPriority", (1, 48)),
        Until("Config.MacAddress", (1, 52)),
        EmptyOmitted("Config.OnBuild", (1, 52)),
        EmptyOmitted("HostConfig.KernelMemory", (1, 42)),
        EmptyOmitted("HostConfig.KernelMemoryTCP", (1, 42)),
        Until("HostConfig.KernelMemoryTCP", (1, 52)),
    ),
    "DiskUsage": (
        Until("BuilderSize", (1, 42)),
        Until("BuildCache.*.Parent", (1, 42)),
        Before((1, 43), _no_placeholders, "Images.*"),
        Until("Images.*.VirtualSize", (1, 44)),
        Since("Images.*.Descriptor", (1, 48)),  # the usage blocks came later (1.52)
        *(Since(name, (1, 52)) for name in ("ImageUsage", "ContainerUsage", "VolumeUsage", "BuildCacheUsage")),
    ),
    "Event": (
        Before((1, 46), _no_image_create),
        Before((1, 52), _legacy_event),
    ),
    "Info": (
        Until("ClusterStore", (1, 42)),
        Until("KernelMemory", (1, 42)),
        Until("ClusterAdvertise", (1, 42)),
        Since("CDISpecDirs", (1, 44)),
        Until("RegistryConfig.AllowNondistributableArtifactsCIDRs", (1, 47)),
        Until("RegistryConfig.AllowNondistributableArtifactsHostnames", (1, 47)),
        Since("FirewallBackend", (1, 49)),
        *(Until(f"{name}.Expected", (1, 49)) for name in ("ContainerdCommit", "RuncCommit", "InitCommit")),
        Until("BridgeNfIptables", (1, 50)),
        Until("BridgeNfIp6tables", (1, 50)),
        Until("KernelMemoryTCP", (1, 52)),
    ),
    "ContainerStats": (
        Since("os_type", (1, 52)),
    ),
    "NetworkInspect": (Since("Status", (1, 52)),),
    # dockerd lists networks with their containers below 1.28 only (GetNetworkSummaries from then on)
    "NetworkSummary": (Until("Containers", (1, 28)),),
}
# request bodies: by the Go struct they are decoded into (gojson's GoType.name)
REQUESTS: dict[str, tuple[Rule, ...]] = {
    "container.CreateRequest": (
        Until("HostConfig.KernelMemory", (1, 42)),  # ignored from 1.42 on
        Before((1, 42), compat.mounts_before_1_42, "HostConfig.Mounts"),
        Before((1, 42), compat.no_console_size, "HostConfig.ConsoleSize"),
        Since("HostConfig.Annotations", (1, 43)),
        Since("Healthcheck.StartInterval", (1, 44)),
        Needs("HostConfig.Mounts.*.BindOptions.ReadOnlyForceRecursive", (1, 44), "BindOptions.ReadOnlyForceRecursive"),
        Before((1, 44), compat.read_only_non_recursive, "HostConfig"),
        Needs("HostConfig.Mounts.*.VolumeOptions.Subpath", (1, 45), "VolumeOptions.Subpath"),
        Since("HostConfig.Mounts.*.TmpfsOptions.Options", (1, 46)),
        Before((1, 48), compat.no_image_mounts, "HostConfig.Mounts"),
        # several networks at create (1.44), their gateway priority (1.48), the container-wide MAC
        # address and interface sysctls moved onto the endpoints (endpoint_compat.py)
        OneEntry("NetworkingConfig.EndpointsConfig", (1, 44),
                 "Container cannot be created with multiple network endpoints: {}"),
        Since("NetworkingConfig.EndpointsConfig.*.GwPriority", (1, 48)),
        Gone("MacAddress", (1, 52), endpoint_compat.MAC_GONE),
        Adapt(endpoint_compat.mac_of_one_endpoint, until=(1, 44)),
        Adapt(endpoint_compat.mac_deprecated, since=(1, 44), until=(1, 52)),
        Adapt(endpoint_compat.sysctls_migrated(only_one=True), until=(1, 44)),
        Adapt(endpoint_compat.sysctls_migrated(only_one=False), since=(1, 44), until=(1, 48)),
        Adapt(endpoint_compat.sysctls_refused, since=(1, 48)),
    ),
    "container.ExecOptions": (Since("ConsoleSize", (1, 42)),),
    "network.CreateRequest": (Since("EnableIPv4", (1, 48)),),  # read from 1.48; inspect shows it always
    "container.ExecStartOptions": (Since("ConsoleSize", (1, 42)),),
    "container.UpdateConfig": (
        Until("KernelMemory", (1, 42)),
        Until("KernelMemoryTCP", (1, 52)),
    ),
    # network.ConnectOptions: dockerd 29 reads EndpointConfig.MacAddress from 1.54 only; Servin honours it at
    # every version, as dockerd 20.10 did for 1.41 clients (dropping it would accept and drop)
}
# query parameters a version did not know (dropped, as dockerd reads them only from their version on):
# route (the path template without its version) -> parameter -> first version
QUERIES: dict[str, Mapping[str, Version]] = {
    "/images/json": {"shared-size": (1, 42), "manifests": (1, 47), "identity": (1, 54)},
    "/system/df": {"type": (1, 42), "verbose": (1, 52)},
    "/containers/{id}/stop": {"signal": (1, 42)},
    "/containers/{id}/restart": {"signal": (1, 42)},
    "/images/{name}/json": {"platform": (1, 49), "manifests": (1, 48)},
    "/images/{name}/history": {"platform": (1, 48)},
    "/images/{name}/get": {"platform": (1, 48)},
    "/images/get": {"platform": (1, 48)},
    "/images/load": {"platform": (1, 48)},
    "/images/{name}/push": {"platform": (1, 46)},
    "/images/{name}": {"platforms": (1, 50)},
    "/build/prune": {"reserved-space": (1, 48), "max-used-space": (1, 48), "min-free-space": (1, 48)},
}
# query parameters a version did not read, fixed to what it did: route -> (first version reading them, values)
FIXED_QUERIES: dict[str, tuple[Version, Mapping[str, str]]] = {
    # below 1.42 a websocket attach has all three streams, whatever it asks
    "/containers/{id}/attach/ws": ((1, 42), {"stdin": "1", "stdout": "1", "stderr": "1"}),
}
# routes that exist from a version on: "METHOD /path" -> first version
ROUTES: dict[str, Version] = {
    "GET /images/{name}/attestations": (1, 55),
}
# values that changed with a version
VALUES: dict[str, Changed] = {
    # GET /events without an Accept that picks one
    "events media type": Changed((1, 52), "application/json", "application/jsonl"),
    # logs without a TTY, and the 101 upgrades of attach and exec start without one
    # container create's warnings (create_warnings.py)
    "volume-driver warning": Changed((1, 48), False, True),
    "empty port-bindings warning": Changed((1, 52), False, True),
    # the image routes' `platform` parameter repeated
    "several platforms": Changed((1, 52), False, True),
    "multiplexed stream media type": Changed((1, 42), "application/vnd.docker.raw-stream",
                                             "application/vnd.docker.multiplexed-stream"),
}


# filters a version implied: route -> rules
FILTERS: dict[str, tuple[FilterBefore, ...]] = {
    "/volumes/prune": (FilterBefore("all", "true", (1, 42)),),
}
