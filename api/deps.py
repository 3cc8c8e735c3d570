"""The routes' dependencies, in one place: the settings and the scorer, from the process's cached factories."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.domain.settings import Settings, get_settings
from shared.scoring.scorer import Scorer, get_scorer


async def settings_dependency() -> Settings:  # async: a cached getter needs no worker-thread hop
    return get_settings()


async def scorer_dependency() -> Scorer:
    return get_scorer(get_settings())


SettingsDep = Annotated[Settings, Depends(settings_dependency)]
ScorerDep = Annotated[Scorer, Depends(scorer_dependency)]
