"""api/wire/filters (both JSON forms, errors) and core/query.select."""

from __future__ import annotations

import json

import pytest

from servin.api.wire.filters import parse_filters
from servin.core.model import Container, ContainerConfig, HostConfig, State, Status
from servin.core.query import label_matches, select
from servin.errors import InvalidArgument

ALLOWED = frozenset({"label", "status", "name", "id", "ancestor", "exited"})


# ---- the filters parameter ----------------------------------------------------------------

def test_empty_or_missing_is_no_filter():
    assert parse_filters(None, ALLOWED) == {}
    assert parse_filters("", ALLOWED) == {}
    assert parse_filters("{}", ALLOWED) == {}


def test_go_map_form():
    raw = json.dumps({"status": {"running": True, "exited": True, "paused": False}, "label": {"a=b": True}})
    assert parse_filters(raw, ALLOWED) == {"status": ["running", "exited"], "label": ["a=b"]}


def test_docker_py_list_form():
    raw = json.dumps({"name": ["web", "db"], "exited": [0]})
    assert parse_filters(raw, ALLOWED) == {"name": ["web", "db"], "exited": ["0"]}


def test_plain_string_value():
    assert parse_filters('{"id": "abc"}', ALLOWED) == {"id": ["abc"]}


def test_bad_json():
    with pytest.raises(InvalidArgument, match="invalid filter"):
        parse_filters("{status", ALLOWED)


def test_not_an_object():
    with pytest.raises(InvalidArgument, match="invalid filter"):
        parse_filters('["status"]', ALLOWED)


def test_bad_value_type():
    with pytest.raises(InvalidArgument, match="invalid filter"):
        parse_filters('{"status": 3}', ALLOWED)


def test_unknown_key_has_dockers_message():
    with pytest.raises(InvalidArgument) as e:
        parse_filters('{"colour": ["red"]}', ALLOWED)
    assert e.value.message == "invalid filter 'colour'"


# ---- selecting containers ------------------------------------------------------------------

def _c(cid: str, name: str, *, status: Status = Status.RUNNING, code: int = 0, labels=None,
       image_id: str = "sha256:aaa") -> Container:
    return Container(
        id=cid, name=name, created="2024-01-01T00:00:00Z", image_id=image_id,
        config=ContainerConfig(image="busybox", labels=labels or {}), host_config=HostConfig(),
        state=State(status=status, exit_code=code), path="sh", args=(), resolved_env=(),
        resolved_user="", resolved_workdir="/", resolved_hostname=cid[:12],
    )


CS = [
    _c("aaa111", "web", labels={"app": "shop", "tier": "front"}),
    _c("bbb222", "webdb", status=Status.EXITED, code=0, labels={"app": "shop"}),
    _c("ccc333", "cache", status=Status.EXITED, code=137, image_id="sha256:bbb"),
    _c("ddd444", "fresh", status=Status.CREATED),
]


def ids(filters):
    def image_ids_of(ref: str) -> set[str]:
        return {"sha256:bbb"} if ref == "redis" else set()

    return [c.id for c in select(CS, filters, image_ids_of=image_ids_of)]


def test_no_filters_selects_all():
    assert ids({}) == ["aaa111", "bbb222", "ccc333", "ddd444"]


def test_label_key_and_key_value():
    assert ids({"label": ["app"]}) == ["aaa111", "bbb222"]
    assert ids({"label": ["app=shop", "tier=front"]}) == ["aaa111"]
    assert ids({"label": ["app=other"]}) == []


def test_status():
    assert ids({"status": ["exited"]}) == ["bbb222", "ccc333"]
    assert ids({"status": ["created", "running"]}) == ["aaa111", "ddd444"]


def test_bad_status_has_dockers_message():
    with pytest.raises(InvalidArgument) as e:
        ids({"status": ["sleeping"]})
    assert e.value.message == "Invalid filter 'status=sleeping'"


def test_name_is_a_regexp_substring():
    assert ids({"name": ["web"]}) == ["aaa111", "bbb222"]
    assert ids({"name": ["^web$"]}) == ["aaa111"]


def test_id_prefix():
    assert ids({"id": ["ccc"]}) == ["ccc333"]
    assert ids({"id": ["ccc", "aaa1"]}) == ["aaa111", "ccc333"]


def test_exited():
    assert ids({"exited": ["137"]}) == ["ccc333"]
    assert ids({"exited": ["0"]}) == ["bbb222"]  # created and running ones have no exit code


def test_bad_exited():
    with pytest.raises(InvalidArgument, match="exited=x"):
        ids({"exited": ["x"]})


def test_ancestor_uses_the_image_resolver():
    assert ids({"ancestor": ["redis"]}) == ["ccc333"]
    assert ids({"ancestor": ["unknown"]}) == []


def test_filters_combine_with_and():
    assert ids({"label": ["app=shop"], "status": ["exited"]}) == ["bbb222"]


def test_label_matches():
    assert label_matches({"a": "1"}, [])
    assert label_matches({"a": ""}, ["a="])
    assert not label_matches({"a": "1"}, ["a="])
