"""api/wire/containers: the create body, human durations; core/containers.parse_signal."""

from __future__ import annotations

import signal

import pytest

from servin.api.wire.containers import human_duration, parse_create
from servin.api.wire.ports import port_bindings_json
from servin.core.containers import parse_signal
from servin.errors import InvalidArgument

S = 1_000_000_000


# ---- parse_create -------------------------------------------------------------------------

def test_minimal_body():
    config, host = parse_create({"Image": "busybox"})
    assert config.image == "busybox"
    assert config.cmd is None and config.entrypoint is None  # inherit from the image
    assert config.env == () and config.labels == {}
    assert host.memory == 0 and host.pids_limit is None and host.shm_size == 64 << 20
    assert host.restart_policy.name == "no" and host.log_type == ""  # the daemon fills in its default driver
    assert host.network_mode == "default"


def test_full_body_as_the_cli_sends_it():
    body = {
        "Image": "busybox:latest", "Cmd": ["sh", "-c", "echo hi"], "Entrypoint": None, "Env": ["A=1", "B=2"],
        "WorkingDir": "/w", "User": "nobody", "Hostname": "h", "Labels": {"a": "1", "n": "2"}, "Tty": True,
        "OpenStdin": True, "StdinOnce": True, "AttachStdin": True, "AttachStdout": True, "AttachStderr": True,
        "StopSignal": "SIGUSR1", "StopTimeout": 5, "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}},
        "HostConfig": {"AutoRemove": True, "Memory": 64 << 20, "MemorySwap": -1, "NanoCpus": 500_000_000,
                       "CpuShares": 2, "CpusetCpus": "0-1", "CpusetMems": "0", "PidsLimit": 5, "ShmSize": 1 << 20,
                       "NetworkMode": "host", "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
                       "LogConfig": {"Type": "none", "Config": {"max-size": "1m"}}},
    }
    config, host = parse_create(body)
    assert config.cmd == ("sh", "-c", "echo hi") and config.entrypoint is None
    assert config.env == ("A=1", "B=2") and config.labels == {"a": "1", "n": "2"}
    assert (config.working_dir, config.user, config.hostname) == ("/w", "nobody", "h")
    assert config.tty and config.open_stdin and config.stdin_once and config.attach_stdin
    assert (config.stop_signal, config.stop_timeout) == ("SIGUSR1", 5)
    assert config.exposed_ports == ("53/udp", "80/tcp") and config.volumes == ("/data",)
    assert host.auto_remove and host.memory == 64 << 20 and host.memory_swap == -1
    assert (host.nano_cpus, host.cpu_shares, host.cpuset_cpus, host.cpuset_mems) == (500_000_000, 2, "0-1", "0")
    assert host.pids_limit == 5 and host.shm_size == 1 << 20 and host.network_mode == "host"
    assert host.log_type == "none" and host.log_config == {"max-size": "1m"}


def test_memory_swap_defaults_to_twice_memory_like_dockerd():
    _, host = parse_create({"Image": "busybox", "HostConfig": {"Memory": 10 << 20}})
    assert host.memory_swap == 20 << 20
    _, host = parse_create({"Image": "busybox", "HostConfig": {"Memory": 10 << 20, "MemorySwap": 30 << 20}})
    assert host.memory_swap == 30 << 20


def test_entrypoint_empty_string_resets_the_images():
    # `docker run --entrypoint "" img cmd` sends Entrypoint [""] (docker-py sends "")
    for ep in ([""], ""):
        config, _ = parse_create({"Image": "busybox", "Entrypoint": ep, "Cmd": ["ls"]})
        assert config.entrypoint == ()
        assert config.cmd == ("ls",)


def test_entrypoint_and_cmd_as_strings():
    config, _ = parse_create({"Image": "busybox", "Entrypoint": "/bin/sh", "Cmd": "ls"})
    assert config.entrypoint == ("/bin/sh",) and config.cmd == ("ls",)


def test_empty_cmd_list_inherits():
    config, _ = parse_create({"Image": "busybox", "Cmd": []})
    assert config.cmd is None


def test_pids_limit_zero_or_negative():
    assert parse_create({"Image": "b", "HostConfig": {"PidsLimit": 0}})[1].pids_limit is None
    assert parse_create({"Image": "b", "HostConfig": {"PidsLimit": -1}})[1].pids_limit == -1


@pytest.mark.parametrize("body", [None, {}, {"Image": ""}, {"Cmd": ["ls"]}, {"Image": None}])
def test_missing_image_or_body(body):
    with pytest.raises(InvalidArgument) as e:
        parse_create(body)
    assert e.value.message == "config cannot be empty in order to create a container"


GO = "invalid JSON: json: cannot unmarshal "


@pytest.mark.parametrize("body, message", [
    # runconfig's loadJSON into container.CreateRequest (moby v28.2.2, Go 1.24's wording)
    ([], "array into Go value of type container.CreateRequest"),
    ("x", "string into Go value of type container.CreateRequest"),
    ({"Image": 3}, "number into Go struct field CreateRequest.Config.Image of type string"),
    # strslice.StrSlice: its UnmarshalJSON's second try (a string) is the error
    ({"Image": "b", "Cmd": [1, 2]}, "array into Go struct field CreateRequest.Config.Cmd of type string"),
    ({"Image": "b", "Cmd": {"a": 1}}, "object into Go struct field CreateRequest.Config.Cmd of type string"),
    ({"Image": "b", "Entrypoint": [1]}, "array into Go struct field CreateRequest.Config.Entrypoint of type string"),
    ({"Image": "b", "Env": "A=1"}, "string into Go struct field CreateRequest.Config.Env of type []string"),
    ({"Image": "b", "Labels": ["a"]},
     "array into Go struct field CreateRequest.Config.Labels of type map[string]string"),
    ({"Image": "b", "Labels": {"n": 2}}, "number into Go struct field CreateRequest.Config.Labels of type string"),
    ({"Image": "b", "HostConfig": ["x"]},
     "array into Go struct field CreateRequest.HostConfig of type container.HostConfig"),
    ({"Image": "b", "HostConfig": {"Memory": "64m"}},
     "string into Go struct field HostConfig.HostConfig.Resources.Memory of type int64"),
    ({"Image": "b", "HostConfig": {"CpuShares": True}},
     "bool into Go struct field HostConfig.HostConfig.Resources.CpuShares of type int64"),
    ({"Image": "b", "HostConfig": {"Memory": 1.5}},
     "number 1.5 into Go struct field HostConfig.HostConfig.Resources.Memory of type int64"),
    ({"Image": "b", "HostConfig": {"RestartPolicy": "always"}},
     "string into Go struct field HostConfig.HostConfig.RestartPolicy of type container.RestartPolicy"),
    ({"Image": "b", "HostConfig": {"RestartPolicy": {"Name": 1}}},
     "number into Go struct field RestartPolicy.HostConfig.RestartPolicy.Name of type container.RestartPolicyMode"),
    ({"Image": "b", "HostConfig": {"Ulimits": [5]}},
     "number into Go struct field HostConfig.HostConfig.Resources.Ulimits of type units.Ulimit"),
    ({"Image": "b", "HostConfig": {"Mounts": [{"Type": "volume", "VolumeOptions": {"NoCopy": "yes"}}]}},
     "string into Go struct field VolumeOptions.HostConfig.Mounts.VolumeOptions.NoCopy of type bool"),
    ({"Image": "b", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 80}]}}},
     "number into Go struct field PortBinding.HostConfig.PortBindings.HostPort of type string"),
    ({"Image": "b", "Healthcheck": {"Interval": "1s"}},
     "string into Go struct field HealthcheckConfig.Config.Healthcheck.Interval of type time.Duration"),
    ({"Image": "b", "NetworkingConfig": {"EndpointsConfig": {"n": {"Aliases": "a"}}}},
     "string into Go struct field EndpointSettings.NetworkingConfig.EndpointsConfig.Aliases of type []string"),
])
def test_wrong_types_are_go_s_errors(body, message):
    with pytest.raises(InvalidArgument) as e:
        parse_create(body)
    assert e.value.message == GO + message


def test_nulls_leave_go_s_zero_values():
    config, host = parse_create({"Image": "b", "Env": ["A=1", None], "Labels": {"a": None}, "Cmd": None,
                                 "User": None, "HostConfig": {"Memory": None, "Binds": None, "Init": None}})
    assert config.env == ("A=1", "") and config.labels == {"a": ""} and config.cmd is None and config.user == ""
    assert host.memory == 0 and host.binds == () and host.init is None


def test_field_names_match_case_insensitively_as_in_go():
    config, host = parse_create({"image": "b", "cmd": "ls", "hostconfig": {"memory": 1 << 20}})
    assert (config.image, config.cmd, host.memory) == ("b", ("ls",), 1 << 20)


def test_auto_remove_with_a_restart_policy():
    with pytest.raises(InvalidArgument, match="can't create 'AutoRemove' container with restart policy"):
        parse_create({"Image": "b", "HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}})


# ---- human_duration (Docker's units.HumanDuration) ----------------------------------------

@pytest.mark.parametrize("seconds, text", [
    (-5, "Less than a second"), (0, "Less than a second"), (0.5, "Less than a second"), (1, "1 second"),
    (2, "2 seconds"), (59, "59 seconds"), (60, "About a minute"), (119, "About a minute"),
    (120, "2 minutes"), (59 * 60, "59 minutes"), (3600, "About an hour"), (2 * 3600, "2 hours"),
    (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (13 * 86400, "13 days"), (14 * 86400, "2 weeks"),
    (59 * 86400, "8 weeks"), (60 * 86400, "2 months"), (729 * 86400, "24 months"), (730 * 86400, "2 years"),
])
def test_human_duration(seconds, text):
    assert human_duration(int(seconds * S)) == text


# ---- parse_signal ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, num", [
    ("KILL", signal.SIGKILL), ("SIGKILL", signal.SIGKILL), ("9", 9), ("term", signal.SIGTERM),
    ("SIGUSR1", signal.SIGUSR1), (" hup ", signal.SIGHUP), (15, 15), ("64", 64),
])
def test_parse_signal(value, num):
    assert parse_signal(value) == num


def test_parse_signal_default():
    assert parse_signal(None) == signal.SIGKILL
    assert parse_signal("") == signal.SIGKILL
    assert parse_signal("", default=signal.SIGTERM) == signal.SIGTERM


@pytest.mark.parametrize("value", ["0", "65", "BOGUS", "SIG", "-1", "9x"])
def test_parse_signal_invalid(value):
    with pytest.raises(InvalidArgument) as e:
        parse_signal(value)
    assert e.value.message == f"Invalid signal: {value}"


def test_port_bindings_and_publish_all_are_kept():
    _config, host = parse_create({"Image": "busybox", "HostConfig": {
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": None},
        "PublishAllPorts": True}})
    assert port_bindings_json(host.port_bindings) == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                                      "53/udp": [{"HostIp": "", "HostPort": ""}]}
    assert host.publish_all_ports is True


def test_stats_json_block_io_and_networks() -> None:
    from servin.api.wire.stats import stats
    from servin.core.model import Container, ContainerConfig, HostConfig, State
    from servin.kernel.cgroups import CgroupStats

    c = Container(id="c" * 64, name="box", created="2026-01-01T00:00:00Z", image_id="sha256:" + "a" * 64,
                  config=ContainerConfig(image="busybox"), host_config=HostConfig(), state=State(), path="sh",
                  args=(), resolved_env=(), resolved_user="", resolved_workdir="/", resolved_hostname="box")
    cur = CgroupStats(cpu_usage_ns=1, memory_usage=2, memory_limit=None, pids_current=1, oom_kills=0,
                      io_service_bytes=((8, 0, "read", 4096), (8, 0, "write", 0)))
    body = stats(c, cur, None, read="r", preread="p", system_ns=1, pre_system_ns=0, ncpu=2, mem_total=4,
                 networks={"eth0": {"rx_bytes": 1}})
    assert body["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 4096}, {"major": 8, "minor": 0, "op": "write", "value": 0}]
    assert body["blkio_stats"]["io_serviced_recursive"] is None  # none read: null, as dockerd on cgroup v2
    assert body["networks"] == {"eth0": {"rx_bytes": 1}}
    assert "networks" not in stats(c, None, None, read="r", preread="p", system_ns=1, pre_system_ns=0, ncpu=2,
                                   mem_total=4)
