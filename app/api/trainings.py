"""``/v1/trainings``: train a model for a few epochs on synthetic data and read the run back."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.api.deps import Trainings
from app.schemas import ErrorBody, TrainingRun
from app.spec import TrainingSpec

router = APIRouter(prefix="/v1/trainings", tags=["trainings"])


@router.post(
    "",
    response_model=TrainingRun,
    status_code=status.HTTP_201_CREATED,
    summary="Train a model on synthetic data",
    responses={
        422: {
            "model": ErrorBody,
            "description": "The request is invalid or Keras refused to build the model.",
        },
        503: {"model": ErrorBody, "description": "A worker died or timed out before the run could start."},
    },
)
async def create_training(spec: TrainingSpec, trainings: Trainings, response: Response) -> TrainingRun:
    """Train the model on synthetic data made as the seed makes it (features uniform in [0, 1), labels in
    {0, 1}) and answer with the finished run and its per-epoch `history`."""
    run = await trainings.run(spec)
    response.headers["Location"] = f"/v1/trainings/{run.id}"
    return run


@router.get(
    "/{run_id}",
    response_model=TrainingRun,
    summary="Read a training run",
    responses={404: {"model": ErrorBody, "description": "No run has this id."}},
)
async def get_training(run_id: str, trainings: Trainings) -> TrainingRun:
    """Return the run with this id."""
    return trainings.get(run_id)
