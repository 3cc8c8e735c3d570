"""Who an admin call is from: the dependencies of the governance and federated admin routes.

Apart from ``api.deps`` so that only the app serving those routes (the pipeline app, a local run) imports the
admin access policy and the Entra ID token check; the scoring app never loads them (its cold start).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header
from fastapi.concurrency import run_in_threadpool

from api.deps import ServicesDep
from shared.bootstrap import Services
from shared.domain.audit import Actor
from shared.governance.admin_access import FEDERATED, GOVERNANCE, Door


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
