"""The Celery worker process of the scale-out mode (:mod:`.worker`, ``layerwise-worker``). The API process never
imports this package."""
