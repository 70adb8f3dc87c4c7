"""POST /build through the real app, engine and image store, step containers on the fake runtime:
the JSON lines, quiet mode, errors before and after the first line, the refused parameters."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from servin.api.wire.build import parse_options
from servin.errors import InvalidArgument
from multidict import MultiDict
from tests.support.buildcontext import context


async def post(env: Any, files: dict[str, str], **params: str) -> tuple[int, list[dict[str, Any]]]:
    r = await env.client.post("/v1.41/build", params=params, data=context(files),
                              headers={"Content-Type": "application/x-tar"})
    body = await r.read()
    if r.status != 200:
        return r.status, [json.loads(body)]
    assert body.endswith(b"\r\n")
    return r.status, [json.loads(line) for line in body.splitlines() if line.strip()]


DOCKERFILE = 'FROM busybox\nSHELL ["sh", "-c"]\nRUN echo built; echo warn >&2\nENV A=1\n'


async def test_the_json_lines_of_a_build(env: Any) -> None:
    status, lines = await post(env, {"Dockerfile": DOCKERFILE}, t="api:1")
    assert status == 200
    streams = "".join(line.get("stream", "") for line in lines)
    assert "Step 1/4 : FROM busybox\n" in streams and "Step 3/4 : RUN echo built; echo warn >&2\n" in streams
    assert re.search(r" ---> Running in [0-9a-f]{12}\nbuilt\n\033\[91mwarn\n\033\[0mRemoving intermediate", streams)
    aux = [line for line in lines if "aux" in line]
    assert len(aux) == 1 and re.fullmatch(r"sha256:[0-9a-f]{64}", aux[0]["aux"]["ID"])
    assert lines[-2] == {"stream": f"Successfully built {aux[0]['aux']['ID'][7:19]}\n"}
    assert lines[-1] == {"stream": "Successfully tagged api:1\n"}
    assert env.images.get("api:1").id == aux[0]["aux"]["ID"]
    assert env.engine.list() == []  # the step container is gone


async def test_quiet_sends_the_aux_line_and_the_id(env: Any) -> None:
    status, lines = await post(env, {"Dockerfile": DOCKERFILE}, q="1")
    assert status == 200 and len(lines) == 2
    assert lines[1] == {"stream": lines[0]["aux"]["ID"] + "\n"}


async def test_an_error_before_any_line_is_an_http_error(env: Any) -> None:
    status, lines = await post(env, {"Dockerfile": "FROM busybox\nBOGUS x\n"})
    assert status == 400 and lines[0]["message"] == "dockerfile parse error line 2: unknown instruction: BOGUS"


async def test_a_failed_run_ends_the_stream_with_its_code(env: Any) -> None:
    status, lines = await post(env, {"Dockerfile": 'FROM busybox\nSHELL ["sh", "-c"]\nRUN exit 5\n'}, forcerm="1")
    assert status == 200
    message = "The command 'sh -c exit 5' returned a non-zero code: 5"
    assert lines[-1] == {"errorDetail": {"code": 5, "message": message}, "error": message}
    assert env.engine.list() == []


async def test_a_failed_quiet_build_sends_what_it_held(env: Any) -> None:
    status, lines = await post(env, {"Dockerfile": 'FROM busybox\nSHELL ["sh", "-c"]\nRUN exit 5\n'}, q="1",
                               forcerm="1")
    assert status == 200 and lines[0] == {"stream": "Step 1/3 : FROM busybox\n"} and "error" in lines[-1]


async def test_buildkit_endpoints_name_docker_buildkit_0(env: Any) -> None:
    for path in ("/v1.41/session", "/v1.41/grpc", "/v1.41/build?version=2"):
        r = await env.client.post(path, data=b"")
        assert r.status == 400 and "DOCKER_BUILDKIT=0" in (await r.json())["message"]


def q(**params: str | list[str]) -> MultiDict[str]:
    md: MultiDict[str] = MultiDict()
    for k, v in params.items():
        for item in v if isinstance(v, list) else [v]:
            md.add(k, item)
    return md


def test_query_parameters() -> None:
    o = parse_options(q(t=["a", "b:2"], dockerfile="sub/Df", nocache="1", pull="1", target="t",
                        buildargs='{"A": "1", "B": null}', labels='{"l": "v"}', cachefrom='["img"]',
                        memory="1000000", memswap="-1", cpushares="512", cpusetcpus="0", cpuperiod="100000",
                        cpuquota="50000", shmsize="1024", networkmode="none", extrahosts="h:1.2.3.4"),
                      registry_header=None)
    assert o.tags == ("a", "b:2") and o.dockerfile == "sub/Df" and o.no_cache and o.pull and o.target == "t"
    assert o.build_args == {"A": "1", "B": None} and o.labels == {"l": "v"} and o.cache_from == ("img",)
    h = o.host
    assert (h.memory, h.memory_swap, h.cpu_shares, h.cpuset_cpus, h.cpu_period, h.cpu_quota, h.shm_size) == (
        1000000, -1, 512, "0", 100000, 50000, 1024)
    assert h.network_mode == "none" and h.extra_hosts == ("h:1.2.3.4",)
    assert o.remove and not o.force_remove  # rm defaults to true
    assert not parse_options(q(rm="0"), registry_header=None).remove
    assert parse_options(q(rm="0", forcerm="1"), registry_header=None).remove


@pytest.mark.parametrize(("params", "message"), [
    ({"squash": "1"}, "squash is only supported with experimental mode"),
    ({"securityopt": "x"}, "The daemon on this platform does not support setting security options on build"),
    ({"buildargs": "{"}, "error reading build args"),
    ({"isolation": "hyperv"}, 'unsupported isolation: "hyperv"'),
    ({"platform": "linux/s390x-nope"}, "is not supported"),
    ({"outputs": '[{"type": "local"}]'}, "DOCKER_BUILDKIT=0"),
    ({"t": "Bad:Tag"}, "invalid reference format"),
])
def test_refused_parameters(params: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_options(q(**params), registry_header=None)
    assert message in err.value.message


def test_remote_is_taken() -> None:
    assert parse_options(q(remote="https://example.com/repo.git#main:sub"), registry_header=None).remote == (
        "https://example.com/repo.git#main:sub")
