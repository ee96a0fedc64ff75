"""What the load test's users send (``bench/locustfile.py``), apart from locust so that ``bench/load.py``
can warm the service with the same specs without importing locust (which monkey-patches the standard library
for gevent)."""

from __future__ import annotations

import copy
import random
import uuid
from typing import Any

from app.spec.examples import SEED_MODELS


def varied(base: dict[str, Any], units: int, features: int, timesteps: int) -> dict[str, Any]:
    """A copy of a seed model with its LSTM's ``units`` and its input's ``(timesteps, features)`` changed."""
    spec = copy.deepcopy(base)
    holder = spec if ("input_shape" in spec or "batch_input_shape" in spec) else spec["layers"][0]
    key = "input_shape" if "input_shape" in holder else "batch_input_shape"
    holder[key] = [*holder[key][:-2], timesteps, features]
    spec["layers"][0]["units"] = units
    return spec


SEEDS = list(SEED_MODELS.values())
#: The specs asked for again and again: the seed's four models, and each with 8, 16 and 64 units.
REPEATED = [*SEEDS, *(varied(s, units, 20, 10) for s in SEEDS for units in (8, 16, 64))]


def new_spec(rng: random.Random) -> dict[str, Any]:
    """A seed model with 1-64 units on 2-50 timesteps of 1-64 features, under a name no request used before,
    so the summary cache cannot answer it."""
    spec = varied(rng.choice(SEEDS), rng.randint(1, 64), rng.randint(1, 64), rng.randint(2, 50))
    spec["name"] = f"load_{uuid.uuid4().hex[:16]}"
    return spec


def training_body(rng: random.Random) -> dict[str, Any]:
    """A small training of one of the seed's models: 64-128 samples, 1-2 epochs (2 to 52 batches: the fixed
    batch of 5 makes more), a random seed; a second or so of a training worker."""
    return {
        "model": rng.choice(SEEDS),
        "data": {"samples": rng.choice((64, 96, 128))},
        "fit": {"epochs": rng.randint(1, 2)},
        "seed": rng.randrange(2**32),
    }
