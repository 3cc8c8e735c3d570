"""The routes' dependencies, in one place: the services of the composition root, and who an admin call is from.

Each is an ``Annotated[..., Depends(...)]`` alias a route names as a parameter type. The services
come from ``shared.bootstrap`` for the settings the app was built with (``create_app(settings=...)``)
or, by default, the process's; resolving them is a dictionary read, no construction per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from shared.bootstrap import Services, bootstrap
from shared.domain.audit import Actor
from shared.domain.settings import Settings
from shared.governance.admin_access import FEDERATED, GOVERNANCE, Door
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


async def admin_actor(services: Services, door: Door, *, authorization: str | None, key: str | None) -> Actor:
    """Who calls an admin route of ``door`` (``shared.governance.admin_access``), or its refusal (401, 403, 503).
    A token's check may fetch the tenant's signing keys (once, then cached): off the event loop."""
    access = services.admin_access
    if authorization is None:
        return access.actor(door, authorization=None, key=key)
    return await run_in_threadpool(lambda: access.actor(door, authorization=authorization, key=key))


BEARER = "an Entra ID access token, 'Bearer <token>', whose roles hold the route's app role"


async def governance_admin(
    services: ServicesDep,
    authorization: Annotated[str | None, Header(description=BEARER + " (ADMIN_ENTRA_ROLE)")] = None,
    x_admin_key: Annotated[
        str | None, Header(description="local runs only: the governance admin key (ADMIN_KEY)")
    ] = None,
) -> Actor:
    """The actor of a governance admin call: a person with ``ADMIN_ENTRA_ROLE``, or locally ``ADMIN_KEY``."""
    return await admin_actor(services, GOVERNANCE, authorization=authorization, key=x_admin_key)


GovernanceAdmin = Annotated[Actor, Depends(governance_admin)]


async def federated_admin(
    services: ServicesDep,
    authorization: Annotated[str | None, Header(description=BEARER + " (FL_ADMIN_ENTRA_ROLE)")] = None,
    x_fl_admin_key: Annotated[
        str | None, Header(description="local runs only: the federated admin key (FL_ADMIN_KEY)")
    ] = None,
) -> Actor:
    """The actor of a federated admin call: a person with ``FL_ADMIN_ENTRA_ROLE``, or locally ``FL_ADMIN_KEY``."""
    return await admin_actor(services, FEDERATED, authorization=authorization, key=x_fl_admin_key)


FederatedAdmin = Annotated[Actor, Depends(federated_admin)]
