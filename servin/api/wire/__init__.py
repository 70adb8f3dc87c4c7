"""Docker JSON ⇄ domain objects, one module per resource."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from servin import errors

F = TypeVar("F", bound=Callable[..., Any])


def request_body(what: str) -> Callable[[F], F]:
    """A parser of client JSON: a value of the wrong type anywhere (a string where Docker wants an
    object...) is the client's error (400), as Go's decoder makes it, never a 500."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def parse(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except (TypeError, AttributeError, ValueError, KeyError, IndexError) as exc:
                raise errors.InvalidArgument(
                    f"json: cannot unmarshal the request body into {what}: a field has the wrong type") from exc

        return parse  # type: ignore[return-value]

    return wrap
