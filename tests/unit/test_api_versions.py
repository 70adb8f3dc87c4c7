"""wire/versions.py: the rules that shape answers and requests by the request's API version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servin.api.wire import versions
from servin.api.wire.versions import Adapt, Before, Gone, Needs, OneEntry, Since, Until
from servin.errors import InvalidArgument


@pytest.fixture(autouse=True)
def newest_after() -> Iterator[None]:
    token = versions.use(versions.MAX_VERSION)
    yield
    versions.reset(token)


@pytest.fixture
def rules(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[versions.Rule, ...]]:
    table: dict[str, tuple[versions.Rule, ...]] = {}
    monkeypatch.setattr(versions, "RESPONSES", table)
    monkeypatch.setattr(versions, "REQUESTS", table)
    return table


def at(v: versions.Version) -> None:
    versions.use(v)  # newest_after resets it


def test_parse_and_text() -> None:
    assert versions.parse("1.41") == (1, 41) and versions.parse("1") is None and versions.parse("x.1") is None
    assert versions.text((1, 55)) == "1.55"


def test_since_and_until_take_fields_away_by_version(rules) -> None:
    rules["Thing"] = (Since("New", (1, 44)), Until("Old", (1, 44)), Since("Nets.*.DNSNames", (1, 44)))

    def answer() -> dict:
        return {"New": 1, "Old": 2, "Nets": {"a": {"DNSNames": ["x"], "IP": "1"}, "b": {"IP": "2"}}}

    at((1, 41))
    assert versions.shape("Thing", answer()) == {"Old": 2, "Nets": {"a": {"IP": "1"}, "b": {"IP": "2"}}}
    at((1, 44))
    assert versions.shape("Thing", answer()) == {"New": 1, "Nets": {"a": {"DNSNames": ["x"], "IP": "1"},
                                                                    "b": {"IP": "2"}}}
    at((1, 41))
    assert versions.shape("Thing", [answer(), answer()])[1] == {"Old": 2, "Nets": {"a": {"IP": "1"},
                                                                                 "b": {"IP": "2"}}}


def test_before_changes_older_answers_only(rules) -> None:
    rules["Img"] = (Before((1, 43), lambda tags: tags or ["<none>:<none>"], "RepoTags"),)
    at((1, 42))
    assert versions.shape("Img", [{"RepoTags": []}, {"RepoTags": ["a:1"]}]) == [
        {"RepoTags": ["<none>:<none>"]}, {"RepoTags": ["a:1"]}]
    at((1, 43))
    assert versions.shape("Img", {"RepoTags": []}) == {"RepoTags": []}


def test_requests_drop_unknown_fields_and_refuse_what_needs_a_newer_version(rules) -> None:
    rules["container.CreateRequest"] = (Since("HostConfig.Annotations", (1, 43)),
                                        Needs("HostConfig.Mounts.*.VolumeOptions.Subpath", (1, 45),
                                              "VolumeOptions.Subpath"))
    body = {"HostConfig": {"Annotations": {"a": "b"}, "Mounts": [{"VolumeOptions": {"Subpath": "x"}}]}}
    at((1, 45))
    assert versions.shape_request("container.CreateRequest", body)["HostConfig"]["Annotations"] == {"a": "b"}
    at((1, 44))
    with pytest.raises(InvalidArgument, match=r"^VolumeOptions.Subpath needs API v1.45 or newer$"):
        versions.shape_request("container.CreateRequest", body)
    at((1, 42))
    body["HostConfig"]["Mounts"] = [{"VolumeOptions": {"Subpath": ""}}]
    assert "Annotations" not in versions.shape_request("container.CreateRequest", body)["HostConfig"]


def test_query_parameters_and_routes_of_a_newer_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(versions.QUERIES, "/containers/{id}/stop", {"signal": (1, 42)})
    monkeypatch.setitem(versions.ROUTES, "GET /images/{name}/attestations", (1, 55))
    at((1, 41))
    params = [("t", "1"), ("signal", "KILL")]
    assert versions.query_at_version("/containers/{id}/stop", params) == [("t", "1")]
    with pytest.raises(InvalidArgument, match="GET /images/{name}/attestations requires minimum API version 1.55"):
        versions.check_route("GET", "/images/{name}/attestations")
    at((1, 55))
    assert versions.query_at_version("/containers/{id}/stop", params) == params
    versions.check_route("GET", "/images/{name}/attestations")


def test_gone_one_entry_and_adapt_rules_of_requests(rules) -> None:
    def move(body: dict, warn) -> dict:
        if "Old" in body:
            warn(f"moved {body.pop('Old')}")
            body["New"] = True
        return body

    rules["container.CreateRequest"] = (
        OneEntry("NetworkingConfig.EndpointsConfig", (1, 44), "several endpoints: {}"),
        Gone("MacAddress", (1, 52), "no container-wide MAC"),
        Adapt(move, since=(1, 44), until=(1, 52)),
    )
    two = {"NetworkingConfig": {"EndpointsConfig": {"b": {}, "a": {}}}}
    at((1, 43))
    with pytest.raises(InvalidArgument, match=r"^several endpoints: a, b$"):
        versions.shape_request("container.CreateRequest", two)
    assert versions.shape_request("container.CreateRequest", {"Old": 1}) == {"Old": 1}  # Adapt not below 1.44
    assert versions.warnings() == []
    at((1, 44))
    assert versions.shape_request("container.CreateRequest", two) == two
    assert versions.shape_request("container.CreateRequest", {"Old": 1, "MacAddress": "x"}) == {
        "MacAddress": "x", "New": True}
    assert versions.warnings() == ["moved 1"]
    at((1, 52))  # `use` starts a request: no warnings yet
    assert versions.warnings() == []
    with pytest.raises(InvalidArgument, match=r"^no container-wide MAC$"):
        versions.shape_request("container.CreateRequest", {"MacAddress": "x"})
    assert versions.shape_request("container.CreateRequest", {"MacAddress": "", "Old": 2}) == {"MacAddress": "",
                                                                                               "Old": 2}


def test_websocket_attach_has_all_streams_below_1_42() -> None:
    asked = [("stdout", "1"), ("logs", "1")]
    at((1, 41))
    assert sorted(versions.query_at_version("/containers/{id}/attach/ws", asked)) == [
        ("logs", "1"), ("stderr", "1"), ("stdin", "1"), ("stdout", "1")]
    at((1, 42))
    assert versions.query_at_version("/containers/{id}/attach/ws", asked) == asked
