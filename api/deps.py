"""The routes' dependencies, in one place: the services of the composition root, and the admin key checks.

Each is an ``Annotated[..., Depends(...)]`` alias a route names as a parameter type. The services
come from ``shared.bootstrap`` for the settings the app was built with (``create_app(settings=...)``)
or, by default, the process's; resolving them is a dictionary read, no construction per request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request
from pydantic import SecretStr

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


def admin_actor_for(configured: SecretStr | None, given: str | None, header: str) -> str:
    """The audit actor of an admin call whose ``header`` carries ``configured`` (constant-time compared);
    ``AuthError`` (401) when no key is configured, none is given or it is wrong."""
    from shared.adapters.audit import admin_actor
    from shared.federated.auth import AuthError

    if not configured or not given or not hmac.compare_digest(configured.get_secret_value().encode(), given.encode()):
        raise AuthError(f"the admin key ({header}) is missing or wrong")
    return admin_actor(given)


async def governance_admin(
    settings: SettingsDep,
    x_admin_key: Annotated[str | None, Header(description="the governance admin key (ADMIN_KEY)")] = None,
) -> str:
    """The audit actor of a governance admin call (``X-Admin-Key`` = ``ADMIN_KEY``); 401 otherwise."""
    return admin_actor_for(settings.governance.admin_key, x_admin_key, "X-Admin-Key")


GovernanceAdmin = Annotated[str, Depends(governance_admin)]


async def federated_admin(
    settings: SettingsDep,
    x_fl_admin_key: Annotated[str | None, Header()] = None,
) -> str:
    """The audit actor of a federated admin call (``X-FL-Admin-Key`` = ``FL_ADMIN_KEY``); 401 otherwise."""
    return admin_actor_for(settings.federated.fl_admin_key, x_fl_admin_key, "X-FL-Admin-Key")


FederatedAdmin = Annotated[str, Depends(federated_admin)]
