"""The host's view of the app: the same once-only index that ``fraudops replay --local`` uses."""

from __future__ import annotations

from cli.function_host import indexed, user_function

host_functions = indexed

__all__ = ["host_functions", "user_function"]
