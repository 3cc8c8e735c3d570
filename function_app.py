"""Composition root of a local run: every function and route in one app (``func start``, the tests).

Azure runs two apps instead, each from its own package: ``deploy/scoring`` and ``deploy/pipeline`` (their
``function_app.py`` files are one line each over ``functions/apps.py``, where what each registers is decided).

Everything imported here must import without raising and without I/O: in Azure an import error silently
registers zero functions. Heavy libraries load inside the handlers.
"""

from functions.startup import collector_paused

with collector_paused():  # the import's objects all live as long as the app
    from functions.apps import everything

    app = everything()
