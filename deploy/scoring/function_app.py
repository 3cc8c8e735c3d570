"""Composition root of the scoring app (its package: ``scripts/build_package.py scoring``): HTTP scoring and the
Event Hubs stream. What it registers is decided in ``functions/apps.py``."""

from functions.apps import scoring

app = scoring()
