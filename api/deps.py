"""The routes' dependencies, in one place: the settings and the scorer, from the process's cached factories."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from shared.adapters.telemetry import configure_telemetry, configured_mode
from shared.domain.settings import Settings, get_settings
from shared.scoring.records import NullRecorder, PredictionRecorder, get_recorder
from shared.scoring.scorer import Scorer, get_scorer


async def settings_dependency(request: Request) -> Settings:  # async: a cached getter needs no thread hop
    """The settings the app was built with (``create_app(settings=...)``), else the process's."""
    given: Settings | None = request.app.state.settings
    settings = given if given is not None else get_settings()
    if configured_mode() is None:  # the first request sets telemetry up, once per process
        configure_telemetry(settings)
    return settings


SettingsDep = Annotated[Settings, Depends(settings_dependency)]


async def scorer_dependency(settings: SettingsDep) -> Scorer:
    return get_scorer(settings)


ScorerDep = Annotated[Scorer, Depends(scorer_dependency)]


async def recorder_dependency(settings: SettingsDep) -> PredictionRecorder | NullRecorder:
    return get_recorder(settings)


RecorderDep = Annotated[PredictionRecorder | NullRecorder, Depends(recorder_dependency)]


def admin_actor_for(configured: SecretStr | None, given: str | None, header: str) -> str:
    """The audit actor of an admin call whose ``header`` carries ``configured`` (constant-time compared);
    ``AuthError`` (401) when no key is configured, none is given or it is wrong."""
    from shared.adapters.audit import admin_actor
    from shared.federated.auth import AuthError

    if not configured or not given or not hmac.compare_digest(configured.get_secret_value().encode(), given.encode()):
        raise AuthError(f"the admin key ({header}) is missing or wrong")
    return admin_actor(given)
