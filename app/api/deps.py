"""Dependency aliases: the services the app's lifespan created, typed for route signatures.

The providers are ``async``: FastAPI runs a plain ``def`` dependency in a thread pool, a thread hop per
request for a dictionary lookup (seen in a profile of the summary route).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.errors import ErrorItem, SpecError
from app.runs.service import TrainingService
from app.summaries.service import SummaryService


async def _summaries(request: Request) -> SummaryService:
    service: SummaryService = request.app.state.summaries
    return service


async def _trainings(request: Request) -> TrainingService:
    service: TrainingService = request.app.state.trainings
    return service


Summaries = Annotated[SummaryService, Depends(_summaries)]
Trainings = Annotated[TrainingService, Depends(_trainings)]


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route takes, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query_parameters(request: Request) -> None:
    """Router dependency: refuse a query parameter the route does not take, as the body refuses unknown fields.

    ``?wiat=60`` would otherwise be ignored and the request answered without the wait the client asked for.

    Raises:
        SpecError: (422, ``query_param_unknown``) one item per unknown parameter, listing the route's own.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = sorted(_query_names(route.dependant))
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in known]
    if unknown:
        takes = f"it takes {', '.join(known)}" if known else "it takes none"
        raise SpecError(
            [
                ErrorItem(
                    ("query", name),
                    f"unknown query parameter {name!r} for this endpoint: {takes}",
                    "query_param_unknown",
                )
                for name in unknown
            ]
        )
