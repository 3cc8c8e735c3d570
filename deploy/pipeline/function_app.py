"""Composition root of the pipeline app (its package: ``scripts/build_package.py pipeline``): the blob ETL, the
retrain and monitor timers, the federated coordinator and the governance routes. What it registers is decided in
``functions/apps.py``."""

from functions.startup import collector_paused

with collector_paused():  # the import's objects all live as long as the app
    from functions.apps import pipeline

    app = pipeline()
