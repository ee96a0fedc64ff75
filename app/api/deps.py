"""Dependency aliases: the services the app's lifespan created, typed for route signatures."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.jobs import TrainingService
from app.summaries import SummaryService


def _summaries(request: Request) -> SummaryService:
    service: SummaryService = request.app.state.summaries
    return service


def _trainings(request: Request) -> TrainingService:
    service: TrainingService = request.app.state.trainings
    return service


Summaries = Annotated[SummaryService, Depends(_summaries)]
Trainings = Annotated[TrainingService, Depends(_trainings)]
