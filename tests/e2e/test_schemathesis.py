"""schemathesis against the service's own OpenAPI document, on the real server: thousands of generated
requests (examples, coverage, fuzzing, and stateful sequences along the document's links), no 5xx, and every
answer as the document declares it (status codes, headers, bodies, server-sent events)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.serving import running_server

# Trainings end within a couple of seconds here, so stateful sequences that follow a run's events end too.
FUZZ_SERVER = {
    "LAYERWISE_RUNS_DB": ":memory:",
    "LAYERWISE_RATE_LIMIT": "",  # one client sends thousands of requests
    "LAYERWISE_MAX_ACTIVE_RUNS_PER_CLIENT": "1000",
    "LAYERWISE_TRAINING_TIME_LIMIT_S": "2",
    "LAYERWISE_MAX_EPOCHS": "3",
    "LAYERWISE_MAX_SAMPLES": "2000",
}

# Checks left out, and why:
# - positive_data_acceptance: the document cannot say everything the service checks (exactly one input shape,
#   unique names, the size limits, what Keras refuses); those answers are documented 422s.
# - use_after_free: DELETE cancels a run and keeps its record (as the run's API says), so a GET after it is a
#   200 with status "cancelled", not a 404.
EXCLUDED = "positive_data_acceptance,use_after_free"


def test_schemathesis_finds_no_server_error_and_no_schema_lie(tmp_path: Path) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli is not None, "schemathesis is in the test extras"
    with running_server(FUZZ_SERVER) as base:
        done = subprocess.run(
            [
                cli,
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--exclude-checks",
                EXCLUDED,
                "--max-examples",
                "100",
                "--seed",
                "1",
                "--request-timeout",
                "120",
                "--report",
                "junit",
                "--report-dir",
                str(tmp_path),
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=1200,
            cwd=tmp_path,  # its example cache (.schemathesis/) goes there, not into the working tree
        )
    out = done.stdout
    assert done.returncode == 0, out[-8000:]
    generated = re.search(r"(\d+) generated", out)
    assert generated is not None, out[-2000:]
    assert int(generated.group(1)) >= 1000, out[-2000:]
