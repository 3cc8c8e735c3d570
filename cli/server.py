"""Running the API under uvicorn on 127.0.0.1, in the foreground or in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.domain.settings import Settings

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    host: str = LOOPBACK,
    port: int | None = None,
    *,
    timeout: float = 20.0,
    function_key: str | None = None,
    settings: Settings | None = None,
) -> Iterator[str]:
    """Serve the API in a thread; yield its base URL; stop it on exit.

    With ``function_key`` every request must carry that key, as the Functions host demands in Azure;
    with ``settings`` the routes use those instead of the process's.
    """
    import uvicorn

    from api.app import create_app

    app: Any = create_app(settings)
    if function_key is not None:
        from shared.adapters.function_keys import FunctionKeyCheck

        app = FunctionKeyCheck(app, [function_key])
    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the API did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
