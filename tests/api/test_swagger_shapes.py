"""The answers of each route at API 1.41, 1.44 and 1.55 hold only the fields the swagger of that version
declares: a field a version did not have (or no longer has) fails here. 1.24 answers as 1.41 (Servin's
rules change nothing below 1.42)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml


REFERENCE = Path(os.environ.get("SERVIN_REFERENCE", "/work/shared/reference"))
DATA = Path(__file__).parent / "data"  # the versions the shared reference does not hold

# what dockerd sends and the swagger of its version does not declare (the swagger lags the code): 20.10's
# df kept BuilderSize; 29.7's df keeps the legacy lists beside the usage blocks without ?verbose (its
# system_routes.go getDiskUsage, for docker-py)
UNDECLARED_BUT_SENT = {
    "1.41": {"SystemDf.BuilderSize"},
    "1.44": set(),
    "1.55": {f"SystemDf.{name}" for name in ("LayersSize", "Images", "Containers", "Volumes", "BuildCache")},
}


@functools.cache
def swagger(v: str) -> dict[str, Any]:
    name = f"docker-api-v{v}.yaml"
    return yaml.safe_load((DATA / name if (DATA / name).exists() else REFERENCE / name).read_text())


def resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A schema with its $ref followed and its allOf merged."""
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[1]]
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}}
        for part in schema["allOf"]:
            merged["properties"].update(resolve(part, defs).get("properties", {}))
        return merged
    return schema


def undeclared(value: Any, schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    schema = resolve(schema, defs)
    found: list[str] = []
    if isinstance(value, dict) and schema.get("properties") and not schema.get("additionalProperties"):
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{path}.{key}")
            else:
                found += undeclared(item, schema["properties"][key], defs, f"{path}.{key}")
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for item in value.values():
            found += undeclared(item, schema["additionalProperties"], defs, f"{path}.*")
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            found += undeclared(item, schema["items"], defs, path)
    return found


ROUTES = [  # (name for the allow-list, swagger path, the path requested)
    ("ContainerSummary", "/containers/json", "/containers/json?all=1"),
    ("ContainerInspect", "/containers/{id}/json", "/containers/shaped/json"),
    ("ImageSummary", "/images/json", "/images/json"),
    ("ImageInspect", "/images/{name}/json", "/images/busybox/json"),
    ("ImageSummary", "/images/json", "/images/json?manifests=1&identity=1"),
    ("ImageInspect", "/images/{name}/json", "/images/busybox/json?manifests=1"),
    ("Info", "/info", "/info"),
    ("Version", "/version", "/version"),
    ("SystemDf", "/system/df", "/system/df"),
    ("Volumes", "/volumes", "/volumes"),
    ("Volume", "/volumes/{name}", "/volumes/vol"),
    ("History", "/images/{name}/history", "/images/busybox/history"),
    ("Stats", "/containers/{id}/stats", "/containers/shaped/stats?stream=0"),
    ("Changes", "/containers/{id}/changes", "/containers/shaped/changes"),
]


@pytest.mark.parametrize("v", ["1.41", "1.44", "1.55"])
async def test_answers_hold_only_the_fields_of_their_version(env, v: str) -> None:
    await env.create("shaped")
    await env.client.post("/volumes/create", json={"Name": "vol"})
    spec = swagger(v)
    problems = []
    for name, route, path in ROUTES:
        r = await env.client.get(f"/v{v}{path}")
        assert r.status == 200, (path, await r.text())
        schema = spec["paths"][route]["get"]["responses"][200]["schema"]
        extra = undeclared(await r.json(), schema, spec["definitions"], name)
        problems += [p for p in extra if p not in UNDECLARED_BUT_SENT[v]]
    assert problems == []


async def test_1_24_answers_as_1_41(env) -> None:
    await env.create("shaped")
    await env.client.post("/volumes/create", json={"Name": "vol"})
    for _name, _route, path in ROUTES:
        old, mid = [await (await env.client.get(f"/v{v}{path}")).json() for v in ("1.24", "1.41")]
        for answer in (old, mid):
            for item in answer if isinstance(answer, list) else [answer] if isinstance(answer, dict) else []:
                for clock in ("SystemTime", "read", "preread"):  # /info's and stats' clocks
                    item.pop(clock, None)
                item.pop("Status", None) if isinstance(item.get("Status"), str) else None  # "Created 1 second ago"
        assert old == mid, path
