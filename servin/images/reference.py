"""Docker image references, parsed and normalized the way distribution/reference does.

``busybox`` normalizes to domain ``docker.io``, path ``library/busybox``; ``familiar()`` turns it back
into the short form Docker prints (``busybox:latest``, ``localhost:5000/x:1``). Errors carry Docker's
wording and are raised as :class:`servin.errors.InvalidArgument`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from servin.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"

_REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$", re.ASCII)
_TAG_RE = re.compile(rf"^{_TAG}$", re.ASCII)
_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")
_SHA256_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")

ERR_INVALID_FORMAT = "invalid reference format"
ERR_UPPERCASE = "invalid reference format: repository name must be lowercase"
ERR_NAME_EMPTY = "repository name must have at least one component"
ERR_NAME_TOO_LONG = f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
ERR_TAG_INVALID = "invalid tag format"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """A normalized named reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The fully qualified repository name, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    def familiar_name(self) -> str:
        """The repository name as Docker shows it (``busybox``, ``user/app``, ``localhost:5000/x``)."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in path[len(OFFICIAL_REPO_PREFIX) :]:
                return path[len(OFFICIAL_REPO_PREFIX) :]
            return path
        return self.name

    def familiar(self) -> str:
        """The whole reference as Docker prints it: ``busybox:latest``, ``x@sha256:...``."""
        return self.familiar_name() + self._suffix()

    def __str__(self) -> str:
        return self.name + self._suffix()

    def _suffix(self) -> str:
        out = ""
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out

    def name_only(self) -> Reference:
        return replace(self, tag=None, digest=None)

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.match(tag):
            raise InvalidArgument(ERR_TAG_INVALID)
        return replace(self, tag=tag, digest=None)

    def tag_name_only(self) -> Reference:
        """Add the ``latest`` tag when the reference has neither a tag nor a digest."""
        if self.tag is None and self.digest is None:
            return replace(self, tag=DEFAULT_TAG)
        return self


def _split_docker_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1 :]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _parse_full(s: str) -> Reference:
    """Parse an already fully qualified reference (distribution's ``Parse``)."""
    m = _REFERENCE_RE.match(s)
    if m is None:
        if s == "":
            raise InvalidArgument(ERR_NAME_EMPTY)
        if _REFERENCE_RE.match(s.lower()) is not None:
            raise InvalidArgument(ERR_UPPERCASE)
        raise InvalidArgument(ERR_INVALID_FORMAT)
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(ERR_NAME_TOO_LONG)
    if digest is not None:
        algo, _, hexpart = digest.partition(":")
        if algo == "sha256" and len(hexpart) != 64:
            raise InvalidArgument("invalid checksum digest length")
        if algo not in ("sha256", "sha384", "sha512"):
            raise InvalidArgument("unsupported digest algorithm")
    domain, _, path = name.partition("/")
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def parse_normalized(s: str) -> Reference:
    """Parse a user-supplied reference like ``ParseNormalizedNamed``; no default tag is added."""
    if _IDENTIFIER_RE.match(s):
        raise InvalidArgument(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_docker_domain(s)
    tag_sep = remainder.find(":")
    remote_name = remainder[:tag_sep] if tag_sep > -1 else remainder
    if remote_name.lower() != remote_name:
        raise InvalidArgument(ERR_UPPERCASE)
    ref = _parse_full(domain + "/" + remainder)
    return ref


def parse_tagged(s: str) -> Reference:
    """Parse and add ``latest`` when neither tag nor digest is given (``TagNameOnly``)."""
    return parse_normalized(s).tag_name_only()


def is_full_id(s: str) -> bool:
    """True for ``sha256:<64 hex>`` or a bare 64-hex identifier."""
    return bool(_SHA256_DIGEST_RE.match(s) or _IDENTIFIER_RE.match(s))


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.match(tag))


def familiar(s: str) -> str:
    """Shortcut: the familiar string of a reference (``docker.io/library/x:1`` → ``x:1``)."""
    return parse_normalized(s).familiar()


def truncate_id(image_id: str) -> str:
    """Docker's ``stringid.TruncateID``: drop the algorithm prefix, keep 12 characters."""
    if ":" in image_id:
        image_id = image_id.split(":", 1)[1]
    return image_id[:12]
