"""The Go structs dockerd decodes request bodies into (moby v28.2.2, `api/types/...`), as gojson
types: the fields Servin reads (all of container.Config, which a commit keeps whole), their JSON
names and Go types. Type names are Go's `reflect.Type.String()`, which its errors print."""

from __future__ import annotations

from servin.api.wire.gojson import (
    BOOL,
    EMPTY_STRUCT,
    INT,
    INT64,
    STRING,
    STRSLICE,
    UINT,
    UINT16,
    UINT32,
    UINT64,
    array_of,
    map_of,
    named,
    ptr,
    slice_of,
    struct,
)

STRINGS = slice_of(STRING)
STRING_MAP = map_of(STRING)
DURATION = named("time.Duration", INT64)

# github.com/moby/docker-image-spec/specs-go/v1 (container.HealthConfig is an alias of it)
HEALTHCHECK_CONFIG = struct("v1.HealthcheckConfig", {
    "Test": STRINGS, "Interval": DURATION, "Timeout": DURATION, "StartPeriod": DURATION,
    "StartInterval": DURATION, "Retries": INT,
})

# api/types/container/config.go
CONFIG = struct("container.Config", {
    "Hostname": STRING, "Domainname": STRING, "User": STRING, "AttachStdin": BOOL, "AttachStdout": BOOL,
    "AttachStderr": BOOL, "ExposedPorts": named("nat.PortSet", map_of(EMPTY_STRUCT)), "Tty": BOOL,
    "OpenStdin": BOOL, "StdinOnce": BOOL, "Env": STRINGS, "Cmd": STRSLICE, "Healthcheck": ptr(HEALTHCHECK_CONFIG),
    "ArgsEscaped": BOOL, "Image": STRING, "Volumes": map_of(EMPTY_STRUCT), "WorkingDir": STRING,
    "Entrypoint": STRSLICE, "NetworkDisabled": BOOL, "MacAddress": STRING, "OnBuild": STRINGS,
    "Labels": STRING_MAP, "StopSignal": STRING, "StopTimeout": ptr(INT), "Shell": STRSLICE,
})

# api/types/container/hostconfig.go (container.Ulimit is an alias of go-units' Ulimit)
RESTART_POLICY = struct("container.RestartPolicy", {
    "Name": named("container.RestartPolicyMode", STRING), "MaximumRetryCount": INT,
})
LOG_CONFIG = struct("container.LogConfig", {"Type": STRING, "Config": STRING_MAP})
ULIMIT = struct("units.Ulimit", {"Name": STRING, "Hard": INT64, "Soft": INT64})
WEIGHT_DEVICE = struct("blkiodev.WeightDevice", {"Path": STRING, "Weight": UINT16})
THROTTLE_DEVICE = struct("blkiodev.ThrottleDevice", {"Path": STRING, "Rate": UINT64})
DEVICE_REQUEST = struct("container.DeviceRequest", {
    "Driver": STRING, "Count": INT, "DeviceIDs": STRINGS, "Capabilities": slice_of(STRINGS), "Options": STRING_MAP,
})
RESOURCES = struct("container.Resources", {
    "CpuShares": INT64, "Memory": INT64, "NanoCpus": INT64, "CpuPeriod": INT64, "CpuQuota": INT64,
    "CpusetCpus": STRING, "CpusetMems": STRING, "DeviceCgroupRules": STRINGS, "MemorySwap": INT64,
    "OomKillDisable": ptr(BOOL), "PidsLimit": ptr(INT64), "Ulimits": slice_of(ptr(ULIMIT)),
    "CgroupParent": STRING, "BlkioWeight": UINT16, "BlkioWeightDevice": slice_of(ptr(WEIGHT_DEVICE)),
    "BlkioDeviceReadBps": slice_of(ptr(THROTTLE_DEVICE)), "BlkioDeviceWriteBps": slice_of(ptr(THROTTLE_DEVICE)),
    "BlkioDeviceReadIOps": slice_of(ptr(THROTTLE_DEVICE)), "BlkioDeviceWriteIOps": slice_of(ptr(THROTTLE_DEVICE)),
    "CpuRealtimePeriod": INT64, "CpuRealtimeRuntime": INT64, "DeviceRequests": slice_of(DEVICE_REQUEST),
    "KernelMemory": INT64, "KernelMemoryTCP": INT64, "MemoryReservation": INT64, "MemorySwappiness": ptr(INT64),
    "CpuCount": INT64, "CpuPercent": INT64, "IOMaximumIOps": UINT64, "IOMaximumBandwidth": UINT64,
    "Devices": slice_of(struct("container.DeviceMapping", {
        "PathOnHost": STRING, "PathInContainer": STRING, "CgroupPermissions": STRING})),
})
UPDATE_CONFIG = struct("container.UpdateConfig", {"RestartPolicy": RESTART_POLICY},
                       embed=(("Resources", RESOURCES),))

# api/types/mount/mount.go
MOUNT = struct("mount.Mount", {
    "Type": named("mount.Type", STRING), "Source": STRING, "Target": STRING, "ReadOnly": BOOL,
    "Consistency": named("mount.Consistency", STRING),
    "BindOptions": ptr(struct("mount.BindOptions", {
        "Propagation": named("mount.Propagation", STRING), "NonRecursive": BOOL, "CreateMountpoint": BOOL,
        "ReadOnlyNonRecursive": BOOL, "ReadOnlyForceRecursive": BOOL,
    })),
    "VolumeOptions": ptr(struct("mount.VolumeOptions", {
        "NoCopy": BOOL, "Labels": STRING_MAP, "Subpath": STRING,
        "DriverConfig": ptr(struct("mount.Driver", {"Name": STRING, "Options": STRING_MAP})),
    })),
    "ImageOptions": ptr(struct("mount.ImageOptions", {"Subpath": STRING})),
    "TmpfsOptions": ptr(struct("mount.TmpfsOptions", {
        "SizeBytes": INT64, "Mode": named("fs.FileMode", UINT32), "Options": slice_of(STRINGS),
    })),
})

PORT_BINDING = struct("nat.PortBinding", {"HostIp": STRING, "HostPort": STRING})  # go-connections/nat
HOST_CONFIG = struct("container.HostConfig", {
    "Binds": STRINGS, "LogConfig": LOG_CONFIG, "NetworkMode": named("container.NetworkMode", STRING),
    "PortBindings": named("nat.PortMap", map_of(slice_of(PORT_BINDING))), "RestartPolicy": RESTART_POLICY,
    "AutoRemove": BOOL, "VolumeDriver": STRING, "VolumesFrom": STRINGS,
    "CgroupnsMode": named("container.CgroupnsMode", STRING), "Dns": STRINGS, "DnsOptions": STRINGS,
    "DnsSearch": STRINGS, "ExtraHosts": STRINGS, "GroupAdd": STRINGS, "IpcMode": named("container.IpcMode", STRING),
    "Links": STRINGS, "PidMode": named("container.PidMode", STRING), "PublishAllPorts": BOOL,
    "ReadonlyRootfs": BOOL, "Tmpfs": STRING_MAP, "UTSMode": named("container.UTSMode", STRING), "ShmSize": INT64,
    "Isolation": named("container.Isolation", STRING), "Mounts": slice_of(MOUNT), "Init": ptr(BOOL),
    "StorageOpt": STRING_MAP, "Runtime": STRING,
    "CapAdd": STRSLICE, "CapDrop": STRSLICE, "Privileged": BOOL, "SecurityOpt": STRINGS, "Sysctls": STRING_MAP,
    "OomScoreAdj": INT, "UsernsMode": named("container.UsernsMode", STRING), "MaskedPaths": STRINGS,
    "ReadonlyPaths": STRINGS, "Annotations": STRING_MAP,
}, embed=(("Resources", RESOURCES),))

# api/types/network/endpoint.go, network.go, ipam.go
ENDPOINT_SETTINGS = struct("network.EndpointSettings", {
    "IPAMConfig": ptr(struct("network.EndpointIPAMConfig", {
        "IPv4Address": STRING, "IPv6Address": STRING, "LinkLocalIPs": STRINGS,
    })),
    "Links": STRINGS, "Aliases": STRINGS, "MacAddress": STRING, "DriverOpts": STRING_MAP, "GwPriority": INT,
})
NETWORKING_CONFIG = struct("network.NetworkingConfig", {"EndpointsConfig": map_of(ptr(ENDPOINT_SETTINGS))})

# api/types/container/create_request.go: the body of POST /containers/create (and of /commit,
# which runconfig decodes the same way and keeps the Config of)
CREATE_REQUEST = struct("container.CreateRequest", {
    "HostConfig": ptr(HOST_CONFIG), "NetworkingConfig": ptr(NETWORKING_CONFIG),
}, embed=(("Config", CONFIG),))

IPAM_CONFIG = struct("network.IPAMConfig", {
    "Subnet": STRING, "IPRange": STRING, "Gateway": STRING, "AuxiliaryAddresses": STRING_MAP,
})
IPAM = struct("network.IPAM", {"Driver": STRING, "Options": STRING_MAP, "Config": slice_of(IPAM_CONFIG)})
NETWORK_CREATE_OPTIONS = struct("network.CreateOptions", {
    "Driver": STRING, "Scope": STRING, "EnableIPv4": ptr(BOOL), "EnableIPv6": ptr(BOOL), "IPAM": ptr(IPAM),
    "Internal": BOOL, "Attachable": BOOL, "Ingress": BOOL, "ConfigOnly": BOOL, "Options": STRING_MAP,
    "Labels": STRING_MAP,
})
NETWORK_CREATE_REQUEST = struct("network.CreateRequest", {"Name": STRING, "CheckDuplicate": ptr(BOOL)},
                                embed=(("CreateOptions", NETWORK_CREATE_OPTIONS),))
NETWORK_CONNECT = struct("network.ConnectOptions", {"Container": STRING, "EndpointConfig": ptr(ENDPOINT_SETTINGS)})
NETWORK_DISCONNECT = struct("network.DisconnectOptions", {"Container": STRING, "Force": BOOL})

# api/types/container/exec.go
CONSOLE_SIZE = ptr(array_of(2, UINT))
EXEC_OPTIONS = struct("container.ExecOptions", {
    "User": STRING, "Privileged": BOOL, "Tty": BOOL, "ConsoleSize": CONSOLE_SIZE, "AttachStdin": BOOL,
    "AttachStderr": BOOL, "AttachStdout": BOOL, "Detach": BOOL, "DetachKeys": STRING, "Env": STRINGS,
    "WorkingDir": STRING, "Cmd": STRINGS,
})
EXEC_START_OPTIONS = struct("container.ExecStartOptions", {"Detach": BOOL, "Tty": BOOL, "ConsoleSize": CONSOLE_SIZE})

# api/types/volume/create_options.go
VOLUME_CREATE_OPTIONS = struct("volume.CreateOptions", {
    "ClusterVolumeSpec": ptr(struct("volume.ClusterVolumeSpec", {"Group": STRING})), "Driver": STRING,
    "DriverOpts": STRING_MAP, "Labels": STRING_MAP, "Name": STRING,
})

# api/types/registry/authconfig.go: the body of POST /auth
AUTH_CONFIG = struct("registry.AuthConfig", {
    "username": STRING, "password": STRING, "auth": STRING, "email": STRING, "serveraddress": STRING,
    "identitytoken": STRING, "registrytoken": STRING,
})
