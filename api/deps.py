"""The routes' dependencies: the services of the composition root (who an admin call is from: ``api.admin_deps``).

Each is an ``Annotated[..., Depends(...)]`` alias a route names as a parameter type. The services
come from ``shared.bootstrap`` for the settings the app was built with (``create_app(settings=...)``)
or, by default, the process's; resolving them is a dictionary read, no construction per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shared.bootstrap import Services, bootstrap
from shared.domain.settings import Settings
from shared.scoring.scorer import Scorer


def services_of(request: Request) -> Services:
    """The composition root of the app's settings; the first request also sets telemetry up, once per process.

    A plain call for the hot routes (``api.hot_route``), which resolve no dependency; the others take it
    through ``ServicesDep``.
    """
    services = bootstrap(request.app.state.settings)
    services.configure_telemetry()
    if not _settled:
        _settle()
    return services


_settled = False


def _settle() -> None:
    """Once per process, at the first request: move every object alive now (the imported modules, the app, the
    services: about 100,000) out of the garbage collector's reach. A full collection over them took 70 ms on
    the benchmark machine, a pause in the middle of someone's request each time it ran; after ``gc.freeze``
    a full collection looks only at what requests left behind (``make bench-score`` shows the p99)."""
    global _settled
    import gc

    _settled = True
    gc.freeze()


async def services_dependency(request: Request) -> Services:  # async: a dictionary read needs no thread hop
    """:func:`services_of` as a dependency."""
    return services_of(request)


ServicesDep = Annotated[Services, Depends(services_dependency)]


async def settings_dependency(services: ServicesDep) -> Settings:
    """The settings the app was built with (``create_app(settings=...)``), else the process's."""
    return services.settings


SettingsDep = Annotated[Settings, Depends(settings_dependency)]


async def scorer_dependency(services: ServicesDep) -> Scorer:
    return services.scorer


ScorerDep = Annotated[Scorer, Depends(scorer_dependency)]
