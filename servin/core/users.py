"""Resolve `--user` against the image's /etc/passwd and /etc/group (pure), as runc's and dockerd's
github.com/moby/sys/user (GetExecUser, GetAdditionalGroups) do."""

from __future__ import annotations

from dataclasses import dataclass

from servin.core.names import GO_INT, INT64_MAX, INT64_MIN, go_atoi
from servin.errors import InvalidArgument

# moby/sys/user/user.go: minID = 0, maxID = 1<<31 - 1 ("for 32-bit systems compatibility"), and
# ErrRange = fmt.Errorf("uids and gids must be in range %d-%d", minID, maxID). dockerd returns it
# unwrapped from the spec at `docker start` (`docker run --user 4294967295` prints
# "Error response from daemon: uids and gids must be in range 0-2147483647").
MAX_ID = (1 << 31) - 1
ERR_RANGE = f"uids and gids must be in range 0-{MAX_ID}"



@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


def _field_id(s: str) -> int:
    """A uid or gid field of /etc/passwd or /etc/group as moby/sys/user's parseLine reads it
    (`*e, _ = strconv.Atoi(...)`): 0 when it is not a number, clamped to int64 when too big."""
    if not GO_INT.fullmatch(s):
        return 0
    return max(INT64_MIN, min(INT64_MAX, int(s)))


def _in_range(i: int) -> int:
    """Every uid and gid the container gets: moby/sys/user refuses only numeric `--user`/`--group-add`
    values out of range, but an image's passwd or group entry can carry 4294967296 (which dockerd
    truncates to uint32: root) or -1 as well, so those are refused the same way here."""
    if not 0 <= i <= MAX_ID:
        raise InvalidArgument(ERR_RANGE)
    return i


def _entries(data: bytes | None) -> list[list[str]]:
    if not data:
        return []
    rows = []
    for line in data.decode(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def resolve_user(spec: str, passwd: bytes | None, group: bytes | None) -> ResolvedUser:
    """`spec` is "", "name", "uid", "name:group", "uid:gid" as Docker accepts (GetExecUser)."""
    parts = (spec or "").split(":")
    user_arg, group_arg = parts[0], parts[1] if len(parts) > 1 else ""
    uid_arg, gid_arg = go_atoi(user_arg), go_atoi(group_arg)
    users = [e for e in _entries(passwd) if len(e) >= 7]
    groups = [e for e in _entries(group) if len(e) >= 3]
    if not user_arg:  # the default: the entry of uid 0
        match = next((e for e in users if _field_id(e[2]) == 0), None)
    elif uid_arg is not None:  # a number is always a uid
        match = next((e for e in users if _field_id(e[2]) == uid_arg), None)
    else:
        match = next((e for e in users if e[0] == user_arg), None)
    uid, gid, home, name = 0, 0, "/", None
    if match is not None:
        uid, gid, home, name = _in_range(_field_id(match[2])), _in_range(_field_id(match[3])), match[5], match[0]
    elif user_arg:
        if uid_arg is None:
            raise InvalidArgument(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = _in_range(uid_arg)
    extra: list[int] = []
    if group_arg:
        if gid_arg is not None:
            g = next((e for e in groups if _field_id(e[2]) == gid_arg), None)
        else:
            g = next((e for e in groups if e[0] == group_arg), None)
        if g is not None:
            gid = _in_range(_field_id(g[2]))
        elif gid_arg is None:
            raise InvalidArgument(f"unable to find group {group_arg}: no matching entries in group file")
        else:
            gid = _in_range(gid_arg)
    elif name is not None:  # supplementary groups only in the implicit form, as runc
        for g in groups:
            members = g[3].split(",") if len(g) > 3 and g[3] else []
            if name in members:
                extra.append(_in_range(_field_id(g[2])))
    # like dockerd's getUser: the supplementary list starts with the primary group
    gids = [gid] + [x for x in extra if x != gid]
    return ResolvedUser(uid=uid, gid=gid, additional_gids=tuple(dict.fromkeys(gids)), home=home or "/")


def resolve_group(spec: str, group: bytes | None) -> int:
    """--group-add (GetAdditionalGroups): a group of the image's /etc/group by name or gid, else a
    number in range."""
    for e in _entries(group):
        if len(e) >= 3 and (e[0] == spec or str(_field_id(e[2])) == spec):
            return _in_range(_field_id(e[2]))
    gid = go_atoi(spec)
    if gid is None:
        raise InvalidArgument(f"Unable to find group {spec}: no matching entries in group file")
    return _in_range(gid)
