"""The app's functions indexed once, as the Python worker does at start (indexing twice raises).

For in-process callers that need the registered function itself: ``fraudops replay --local``
and the tests that call functions the way the host does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any


@cache
def indexed() -> dict[str, Any]:
    import function_app

    return {str(f.get_function_name()): f for f in function_app.app.get_functions()}


def user_function(name: str) -> Callable[..., Any]:
    """The Python function registered under ``name``; ``KeyError`` names the ones that exist."""
    functions = indexed()
    if name not in functions:
        raise KeyError(f"no function {name!r}; registered: {sorted(functions)}")
    function: Callable[..., Any] = functions[name].get_user_function()
    return function
