"""Network names: dockerd's libnetwork takes any name that is not blank (Controller.NewNetwork,
`strings.TrimSpace(name) == ""` -> 400 "invalid name: name is empty", moby v28.2.2
libnetwork/controller.go), and clients use that (docker-py's suite makes a network "test 01").
Servin takes the same names except those with control characters (a newline, a NUL, an escape),
which would reach the embedded DNS (`name.network`), the logs and the records as they are."""

from __future__ import annotations

import json
import re

from servin.errors import InvalidArgument

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Go's unicode.IsSpace, which strings.TrimSpace trims (Python's str.strip also takes \x1c-\x1f)
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"


def check_network_name(name: str) -> None:
    if not name.strip(_GO_SPACE):
        raise InvalidArgument("invalid name: name is empty")
    if _CONTROL.search(name):
        raise InvalidArgument(f"invalid name: {json.dumps(name)} includes control characters, which a network "
                              "name may not hold")
