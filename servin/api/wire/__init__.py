"""Docker JSON ⇄ domain objects, one module per resource."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from servin import errors
from servin.api.wire import versions
from servin.api.wire.gojson import INVALID_JSON, GoType, decode

F = TypeVar("F", bound=Callable[..., Any])


def request_body(schema: GoType, *, prefix: str = INVALID_JSON, rules: str | None = None) -> Callable[[F], F]:
    """A parser of a client's JSON body (its first argument), which dockerd decodes into the Go
    struct `schema`: the body is type-checked against it first (a wrong type anywhere is a 400 in
    Go's wording, after dockerd's `prefix`) and handed to the parser normalised as Go fills the
    struct (gojson.decode), then as the request's version reads it (versions.py: the REQUESTS rules of
    `rules`, by default the struct's name); a JSON null body is None."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def parse(body: Any, *args: Any, **kwargs: Any) -> Any:
            body = versions.shape_request(rules or schema.name, decode(body, schema, prefix=prefix))
            try:
                return fn(body, *args, **kwargs)
            except (TypeError, AttributeError, ValueError, KeyError, IndexError) as exc:
                # a safety net: the schema declares every field the parser reads, so this is a
                # Servin bug, still the client's request answered 400 rather than a traceback
                raise errors.InvalidArgument(
                    f"{prefix}json: cannot unmarshal the request body into Go value of type {schema.name}") from exc

        return parse  # type: ignore[return-value]

    return wrap
