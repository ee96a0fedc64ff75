"""Dependency aliases: the services the app's lifespan created, typed for route signatures.

The providers are ``async``: FastAPI runs a plain ``def`` dependency in a thread pool, a thread hop per
request for a dictionary lookup (seen in a profile of the summary route).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.jobs import TrainingService
from app.summaries import SummaryService


async def _summaries(request: Request) -> SummaryService:
    service: SummaryService = request.app.state.summaries
    return service


async def _trainings(request: Request) -> TrainingService:
    service: TrainingService = request.app.state.trainings
    return service


Summaries = Annotated[SummaryService, Depends(_summaries)]
Trainings = Annotated[TrainingService, Depends(_trainings)]
