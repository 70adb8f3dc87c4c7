import pytest

from servin.errors import InvalidArgument
from servin.images.reference import (
    is_full_id,
    parse_normalized,
    parse_tagged,
    truncate_id,
)

pytestmark = pytest.mark.unit

HEX = "a" * 64


@pytest.mark.parametrize(
    "text, domain, path, tag, digest, familiar",
    [
        ("busybox", "docker.io", "library/busybox", None, None, "busybox"),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "busybox:1.36"),
        ("library/busybox", "docker.io", "library/busybox", None, None, "busybox"),
        ("docker.io/busybox", "docker.io", "library/busybox", None, None, "busybox"),
        ("index.docker.io/library/busybox", "docker.io", "library/busybox", None, None, "busybox"),
        ("user/app:v1", "docker.io", "user/app", "v1", None, "user/app:v1"),
        ("localhost:5000/a/b:tag", "localhost:5000", "a/b", "tag", None, "localhost:5000/a/b:tag"),
        ("localhost/x", "localhost", "x", None, None, "localhost/x"),
        ("quay.io/org/img", "quay.io", "org/img", None, None, "quay.io/org/img"),
        ("[::1]:5000/x:1", "[::1]:5000", "x", "1", None, "[::1]:5000/x:1"),
        ("docker.io/library/a/b", "docker.io", "library/a/b", None, None, "library/a/b"),
        (f"busybox@sha256:{HEX}", "docker.io", "library/busybox", None, f"sha256:{HEX}", f"busybox@sha256:{HEX}"),
        (f"x:1@sha256:{HEX}", "docker.io", "library/x", "1", f"sha256:{HEX}", f"x:1@sha256:{HEX}"),
        ("a__b-c.d", "docker.io", "library/a__b-c.d", None, None, "a__b-c.d"),
    ],
)
def test_parse_normalized(text, domain, path, tag, digest, familiar):
    ref = parse_normalized(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert ref.familiar() == familiar


def test_tag_name_only_and_str():
    ref = parse_tagged("busybox")
    assert ref.tag == "latest"
    assert ref.familiar() == "busybox:latest"
    assert str(ref) == "docker.io/library/busybox:latest"
    assert ref.name == "docker.io/library/busybox"
    assert parse_tagged("localhost:5000/x").familiar() == "localhost:5000/x:latest"
    d = parse_tagged(f"x@sha256:{HEX}")
    assert d.tag is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("Busybox", "invalid reference format: repository name must be lowercase"),
        ("user/App:1", "invalid reference format: repository name must be lowercase"),
        ("busybox:", "invalid reference format"),
        ("bad name", "invalid reference format"),
        ("-abc", "invalid reference format"),
        ("a/", "invalid reference format"),
        ("x:bad!tag", "invalid reference format"),
        ("x@sha256:abc", "invalid reference format"),
        ("", "invalid reference format"),
        (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
        ("a/" + "b" * 300, "repository name must not be more than 255 characters"),
    ],
)
def test_invalid(text, message):
    with pytest.raises(InvalidArgument) as e:
        parse_normalized(text)
    assert e.value.message == message


def test_uppercase_domain_allowed():
    ref = parse_normalized("Registry.Example.com/x")
    assert ref.domain == "Registry.Example.com"


def test_with_tag_invalid():
    with pytest.raises(InvalidArgument, match="invalid tag format"):
        parse_normalized("x").with_tag("bad tag")
    assert parse_normalized("x:1").with_tag("2").familiar() == "x:2"


def test_ids():
    assert is_full_id("sha256:" + HEX)
    assert is_full_id(HEX)
    assert not is_full_id("abc")
    assert truncate_id("sha256:" + "0123456789abcdef" * 4) == "0123456789ab"
    assert truncate_id("0123456789abcdef") == "0123456789ab"
