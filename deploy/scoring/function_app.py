"""Composition root of the scoring app (its package: ``scripts/build_package.py scoring``): HTTP scoring and the
Event Hubs stream. What it registers is decided in ``functions/apps.py``."""

from functions.startup import collector_paused

with collector_paused():  # the import's objects all live as long as the app
    from functions.apps import scoring

    app = scoring()
