"""Units of the container-config work of API 1.42 to 1.48: versions.py's filter rule, the plan's
recursive read-only and subpath binds, the spec's read-only modes and annotations, the healthcheck's
start interval, the kernel-version check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.api.wire import compat, versions
from servin.api.wire.mounts import is_local, parse_all
from servin.core.health import DEFAULT_START_INTERVAL, probe_interval
from servin.core.launch import kernel_at_least
from servin.core.model import Health, HealthConfig, MountPoint
from servin.core.spec import _user_mount
from servin.runtime import plan as P
from servin.runtime.plan import Mount, decode, plan_from_oci

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def newest_after() -> Iterator[None]:
    token = versions.use(versions.MAX_VERSION)
    yield
    versions.reset(token)


def test_filter_rule_adds_a_filter_below_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(versions.FILTERS, "/things/prune", (versions.FilterBefore("all", "true", (1, 42)),))
    versions.use((1, 41))
    assert versions.filters_at_version("/things/prune", None) == json.dumps({"all": {"true": True}})
    given = json.dumps({"label": ["a"], "all": ["false"]})
    assert versions.filters_at_version("/things/prune", given) == \
        json.dumps({"label": ["a"], "all": ["false", "true"]})
    assert versions.filters_at_version("/things/prune", "{bad") == "{bad"
    assert versions.filters_at_version("/other", given) == given
    versions.use((1, 42))
    assert versions.filters_at_version("/things/prune", given) == given


def test_create_rules_of_older_versions() -> None:
    def body() -> dict:
        return {"HostConfig": {"ConsoleSize": [10, 20], "Binds": ["/x:/y:ro"], "Mounts": [
            {"Type": "bind", "Source": "/x", "Target": "/b", "ReadOnly": True,
             "BindOptions": {"CreateMountpoint": True}, "VolumeOptions": {"NoCopy": True}}]}}

    versions.use((1, 41))
    hc = versions.shape_request("container.CreateRequest", body())["HostConfig"]
    assert hc["ConsoleSize"] == [0, 0]
    assert hc["Mounts"][0]["BindOptions"] == {"ReadOnlyNonRecursive": True}
    assert "VolumeOptions" not in hc["Mounts"][0]
    assert all(m.read_only_non_recursive for m in parse_all(hc))
    versions.use((1, 44))
    hc = versions.shape_request("container.CreateRequest", body())["HostConfig"]
    assert hc["ConsoleSize"] == [10, 20] and compat.BINDS_READ_ONLY_NON_RECURSIVE not in hc
    assert hc["Mounts"][0]["VolumeOptions"] == {"NoCopy": True}  # refused by parse_all, with dockerd's words


def test_is_local_is_gos_filepath_is_local() -> None:
    assert is_local("a") and is_local("a/../b") and is_local(".")
    assert not is_local("") and not is_local("/a") and not is_local("..") and not is_local("a/../../b")


def test_plan_binds_with_rro_and_a_subpath() -> None:
    cfg = {"process": {"args": ["true"]}, "root": {"path": "/r"}, "mounts": [
        {"destination": "/ro", "type": "bind", "source": "/src", "options": ["rbind", "rro", "rprivate"]},
        {"destination": "/v", "type": "bind", "source": "/vol/_data",
         "options": ["rbind", "rprivate", "x-servin.subpath=a/b"]}]}
    plan = plan_from_oci(cfg, bundle=Path("/b"), cgroup_procs=[], log_path=None, exit_path=None)
    ro, sub = plan.mounts
    assert ro == Mount(source="/src", target="/ro", fstype="bind", flags=P.MS_BIND | P.MS_REC | P.MS_PRIVATE,
                       attr="rro")
    assert sub == Mount(source="/vol/_data", target="/v", fstype="bind", flags=P.MS_BIND | P.MS_REC | P.MS_PRIVATE,
                        data="a/b")
    tags = [v for t, v in decode(plan.encode()) if t == "mount"]
    assert tags[0] == [b"/src", b"/ro", b"bind", str(ro.flags).encode(), b"", b"rro"]
    assert tags[1] == [b"/vol/_data", b"/v", b"bind", str(sub.flags).encode(), b"a/b"]


def test_spec_read_only_modes() -> None:
    def opts(recursive_ro: bool, **kw: bool) -> list[str]:
        mp = MountPoint(type="bind", source="/s", destination="/d", rw=False, propagation="rprivate", **kw)
        return _user_mount(mp, recursive_ro)["options"]

    assert opts(True) == ["rbind", "rro", "rprivate"]
    assert opts(False) == ["rbind", "ro", "rprivate"]  # a kernel without mount_setattr
    assert opts(True, read_only_non_recursive=True) == ["rbind", "ro", "rprivate"]
    assert opts(False, read_only_force_recursive=True) == ["rbind", "rro", "rprivate"]  # fails at start
    assert opts(True, non_recursive=True) == ["bind", "rro", "rprivate"]


def test_probe_interval_in_the_start_period() -> None:
    cfg = HealthConfig(test=("CMD", "true"), interval_ns=30_000_000_000, start_period_ns=10_000_000_000,
                       start_interval_ns=2_000_000_000)
    starting, healthy = Health(status="starting"), Health(status="healthy")
    assert probe_interval(cfg, 1_000_000_000, starting) == 2.0
    assert probe_interval(cfg, 1_000_000_000, None) == 2.0
    assert probe_interval(cfg, 1_000_000_000, healthy) == 30.0
    assert probe_interval(cfg, 11_000_000_000, starting) == 30.0
    no_start_interval = HealthConfig(test=("CMD", "true"), start_period_ns=10_000_000_000)
    assert probe_interval(no_start_interval, 0, starting) == DEFAULT_START_INTERVAL
    assert probe_interval(HealthConfig(test=("CMD", "true")), 0, starting) == 30.0


def test_kernel_at_least() -> None:
    assert kernel_at_least("6.18.44-fc-v1300", (5, 12)) and kernel_at_least("5.12.0", (5, 12))
    assert not kernel_at_least("5.11.22-generic", (5, 12)) and not kernel_at_least("weird", (5, 12))


def test_spec_image_mounts() -> None:
    one = MountPoint(type="image", source="busybox", destination="/img", rw=False, layers=("/l/1",), subpath="bin")
    assert _user_mount(one) == {"destination": "/img", "type": "bind", "source": "/l/1",
                                "options": ["rbind", "ro", "nosuid", "nodev", "rprivate", "x-servin.subpath=bin"]}
    two = MountPoint(type="image", source="app", destination="/img", rw=False, layers=("/l/2", "/l/1"))
    assert _user_mount(two) == {"destination": "/img", "type": "overlay", "source": "overlay",
                                "options": ["ro", "nosuid", "nodev", "lowerdir=/l/2:/l/1"]}
    cfg = {"process": {"args": ["true"]}, "root": {"path": "/r"},
           "mounts": [{**_user_mount(two), "options": [*_user_mount(two)["options"], "x-servin.subpath=usr"]}]}
    m = plan_from_oci(cfg, bundle=Path("/b"), cgroup_procs=[], log_path=None, exit_path=None).mounts[0]
    assert (m.fstype, m.data, m.attr, m.flags) == ("overlay", "lowerdir=/l/2:/l/1", "subpath=usr",
                                                   P.MS_RDONLY | P.MS_NOSUID | P.MS_NODEV)
