"""core/resources: HostConfig resources and restart policies checked with dockerd 20.10's words."""

from __future__ import annotations

import pytest

from servin import errors
from servin.core.model import BlkioDevice, HostConfig, RestartPolicy
from servin.core.resources import assumed_features, check, check_restart_policy, parse_list
from servin.kernel.cgroups import Features

pytestmark = pytest.mark.unit

V1 = assumed_features(1, 2)  # a v1 host with every feature and CPUs 0-1
V2 = assumed_features(2, 2)
BARE = Features(swap=False, memory_reservation=False, swappiness=False, oom_kill_disable=False, cpu_shares=False,
                cpu_cfs=False, cpu_rt=False, cpuset=False, pids=False, blkio_weight=False,
                blkio_weight_device=False, blkio_read_bps=False, blkio_write_bps=False, blkio_read_iops=False,
                blkio_write_iops=False, cpus="0-1", mems="0")
MB = 1 << 20


def refused(hc: HostConfig, features: Features = V1, kind: type = errors.InvalidArgument, **kw: object) -> str:
    with pytest.raises(kind) as ei:
        check(hc, features, ncpu=2, **kw)  # type: ignore[arg-type]
    assert type(ei.value) is kind
    return ei.value.message


@pytest.mark.parametrize(("cpus", "message"), [
    ("999", "Requested CPUs are not available - requested 999, available: 0-1"),
    ("0-2", "Requested CPUs are not available - requested 0-2, available: 0-1"),
    ("abc", "Invalid value abc for cpuset cpus: invalid format: abc"),
    ("2-1", "Invalid value 2-1 for cpuset cpus: invalid format: 2-1"),
    ("9000", "Invalid value 9000 for cpuset cpus: value of out range, maximum is 8192"),
])  # fmt: skip
def test_cpuset_cpus_the_host_lacks(cpus: str, message: str) -> None:
    assert refused(HostConfig(cpuset_cpus=cpus)) == message


def test_cpuset_mems_and_what_is_available() -> None:
    assert refused(HostConfig(cpuset_mems="1")) == (
        "Requested memory nodes are not available - requested 1, available: 0")
    hc, warnings = check(HostConfig(cpuset_cpus="1,0", cpuset_mems="0"), V1, ncpu=2)
    assert (hc.cpuset_cpus, warnings) == ("1,0", [])


def test_parse_list_as_moby() -> None:
    assert parse_list("0,3-4,7,8-10") == {0, 3, 4, 7, 8, 9, 10}
    assert parse_list("0-0,0,1-7") == set(range(8)) and parse_list("") == set()
    with pytest.raises(ValueError, match="invalid format: 1,"):
        parse_list("1,")


def test_memory_settings() -> None:
    assert refused(HostConfig(memory=4 * MB)) == "Minimum memory limit allowed is 6MB"
    assert refused(HostConfig(memory=64 * MB, memory_swap=32 * MB)) == (
        "Minimum memoryswap limit should be larger than memory limit, see usage")
    assert refused(HostConfig(memory_swap=64 * MB)) == (
        "You should always set the Memory limit when using Memoryswap limit, see usage")
    check(HostConfig(memory_swap=64 * MB), V1, ncpu=2, update=True)  # an update may set the swap alone
    for value in (-1, 101):
        assert refused(HostConfig(memory_swappiness=value)) == (
            f"Invalid value: {value}, valid memory swappiness range is 0-100")
    assert refused(HostConfig(memory_reservation=MB)) == "Minimum memory reservation allowed is 6MB"
    assert refused(HostConfig(memory=64 * MB, memory_reservation=128 * MB)) == (
        "Minimum memory limit can not be less than memory reservation limit, see usage")


def test_swappiness_on_v2_is_discarded_with_dockerds_warning() -> None:
    hc, warnings = check(HostConfig(memory_swappiness=10), V2, ncpu=2)
    assert hc.memory_swappiness is None
    assert warnings == ["Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
                        "Memory swappiness discarded."]
    assert check(HostConfig(memory_swappiness=10), V1, ncpu=2)[0].memory_swappiness == 10


def test_kernel_memory_is_accepted_and_discarded_with_warnings() -> None:
    hc, warnings = check(HostConfig(kernel_memory=64 * MB), V1, ncpu=2)
    assert hc.kernel_memory == 0
    assert warnings == [
        "Specifying a kernel memory limit is deprecated and will be removed in a future release.",
        "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. "
        "Limitation discarded.",
    ]


def test_cpu_settings() -> None:
    assert refused(HostConfig(nano_cpus=10**9, cpu_period=100000)) == (
        "Conflicting options: Nano CPUs and CPU Period cannot both be set")
    assert refused(HostConfig(nano_cpus=10**9, cpu_quota=50000)) == (
        "Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    assert refused(HostConfig(nano_cpus=3 * 10**9)) == (
        "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available")
    assert refused(HostConfig(nano_cpus=-1)) == (
        "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available")
    assert check(HostConfig(nano_cpus=500_000), V1, ncpu=2)[0].nano_cpus == 500_000  # 0.0005 CPU
    assert refused(HostConfig(cpu_period=999)) == (
        "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    assert refused(HostConfig(cpu_quota=999)) == "CPU cfs quota can not be less than 1ms (i.e. 1000)"
    hc, warnings = check(HostConfig(cpu_percent=50), V1, ncpu=2)
    assert (hc.cpu_percent, warnings) == (0, ["linux does not support CPU percent. Percent discarded."])


def test_realtime_cpu() -> None:
    # a 500 from dockerd 20.10, a 400 (InvalidParameter) from current moby
    assert refused(HostConfig(cpu_rt_runtime=1000), V2, errors.InvalidArgument) == (
        "Your kernel does not support CPU real-time scheduler")
    assert refused(HostConfig(cpu_rt_period=1000, cpu_rt_runtime=2000), V1, errors.InvalidArgument) == (
        "cpu real-time runtime cannot be higher than cpu real-time period")
    hc, warnings = check(HostConfig(cpu_rt_period=1_000_000, cpu_rt_runtime=950_000), V1, ncpu=2)
    assert (hc.cpu_rt_runtime, warnings) == (950_000, [])


def test_blkio() -> None:
    for weight in (5, 1001):
        assert refused(HostConfig(blkio_weight=weight)) == "Range of blkio weight is from 10 to 1000"
        assert refused(HostConfig(blkio_weight=weight), BARE) == "Range of blkio weight is from 10 to 1000"
    assert refused(HostConfig(blkio_weight_device=(BlkioDevice(path="/dev/sda", value=5),))) == (
        "invalid weight for device: /dev/sda:5")
    hc, warnings = check(HostConfig(blkio_weight=300), V1, ncpu=2)
    assert (hc.blkio_weight, warnings) == (300, [])


def test_what_the_host_lacks_is_discarded_with_dockerds_warnings() -> None:
    dev = (BlkioDevice(path="/dev/sda", value=1 << 20),)
    hc, warnings = check(HostConfig(memory=64 * MB, memory_swap=128 * MB, memory_reservation=32 * MB, cpu_shares=512,
                                    cpu_quota=50000, cpuset_cpus="0", pids_limit=10, blkio_weight=300,
                                    blkio_weight_device=(BlkioDevice(path="/dev/sda", value=300),),
                                    blkio_device_read_bps=dev, blkio_device_write_bps=dev,
                                    blkio_device_read_iops=dev, blkio_device_write_iops=dev, oom_kill_disable=True),
                         BARE, ncpu=2)
    assert warnings == [
        "Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
        "Memory limited without swap.",
        "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. "
        "Limitation discarded.",
        "Your kernel does not support OomKillDisable. OomKillDisable discarded.",
        "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
        "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.",
        "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.",
        "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
        "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.",
        "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. "
        "Block I/O BPS read limit discarded.",
        "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. "
        "Block I/O BPS write limit discarded.",
        "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. "
        "Block I/O IOPS read limit discarded.",
        "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. "
        "Block I/O IOPS write limit discarded.",
    ]
    assert hc == HostConfig(memory=64 * MB, memory_swap=-1)


def test_oom_kill_disable_warnings() -> None:
    assert check(HostConfig(oom_kill_disable=True), V1, ncpu=2)[1] == [
        "OOM killer is disabled for the container, but no memory limit is set, this can result in the system "
        "running out of resources."]
    hc, warnings = check(HostConfig(oom_kill_disable=True, memory=64 * MB), V2, ncpu=2)
    assert not hc.oom_kill_disable
    assert warnings == ["Your kernel does not support OomKillDisable. OomKillDisable discarded."]


@pytest.mark.parametrize(("name", "count", "message"), [
    ("bogus", 0, "invalid restart policy 'bogus'"),
    ("always", 3, "maximum retry count cannot be used with restart policy 'always'"),
    ("unless-stopped", 1, "maximum retry count cannot be used with restart policy 'unless-stopped'"),
    ("no", 2, "maximum retry count cannot be used with restart policy 'no'"),
    ("on-failure", -1, "maximum retry count cannot be negative"),
])  # fmt: skip
def test_restart_policies(name: str, count: int, message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as ei:
        check_restart_policy(RestartPolicy(name=name, maximum_retry_count=count))
    assert ei.value.message == message


def test_valid_restart_policies() -> None:
    for name, count in (("", 0), ("no", 0), ("always", 0), ("unless-stopped", 0), ("on-failure", 5)):
        check_restart_policy(RestartPolicy(name=name, maximum_retry_count=count))
