"""What the Python worker does at start: index the app's functions once (a second call raises)."""

from __future__ import annotations

from functools import cache


@cache
def host_functions() -> dict:
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def user_function(name: str):
    return host_functions()[name].get_user_function()
