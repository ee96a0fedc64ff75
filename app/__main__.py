"""``python -m app`` / ``layerwise``: serve the app with uvicorn on the configured host and port."""

from __future__ import annotations

import uvicorn

from app.config import get_settings


def main() -> None:
    """Run uvicorn with ``LAYERWISE_HOST``, ``LAYERWISE_PORT`` and ``LAYERWISE_LOG_LEVEL``."""
    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
    )


if __name__ == "__main__":
    main()
