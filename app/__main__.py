"""``python -m app`` / ``layerwise``: serve the app with uvicorn on the configured host and port."""

from __future__ import annotations

import uvicorn

from app.config import get_settings
from app.logs import log_config


def main() -> None:
    """Run uvicorn with ``LAYERWISE_HOST``, ``LAYERWISE_PORT``, ``LAYERWISE_LOG_LEVEL`` and ``LAYERWISE_LOG_JSON``."""
    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level, settings.log_json),
    )


if __name__ == "__main__":
    main()
