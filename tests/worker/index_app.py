"""Index an app directory with the real worker logic in this (fresh) process; print the outcome as JSON.

``python -m tests.worker.index_app DIR``: what a new worker process started on DIR reports to the host.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(app_dir: str) -> int:
    sys.path.insert(0, app_dir)  # the host starts the worker with the app's folder first on sys.path
    from tests.worker.host import Host

    host = Host(Path(app_dir))
    init = host.start()
    ok = init.result.status == host.protos.StatusResult.Success
    print(json.dumps({"ok": ok, "error": init.result.exception.message, "functions": sorted(host.functions)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
