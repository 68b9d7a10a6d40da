"""How to start the BentoML service as its own process (``qtis serve``, the demo, the bench)."""

from __future__ import annotations

import os
import sys


def service_env() -> dict[str, str]:
    """No usage tracking; and a service that cannot start exits instead of being restarted."""
    return dict(os.environ) | {"BENTOML_DO_NOT_TRACK": "true", "BENTOML_CONTAINERIZED": "true"}


def service_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:QtisService",
        "--host",
        host,
        "--port",
        str(port),
    ]
