"""Clients generated from the live OpenAPI document, used as a front-end team would use them (issue 19).

The real server runs as a user starts it; its ``/openapi.json`` is the only input of three generators:

- ``openapi-python-client`` (PyPI): its client runs the whole flow with no hand-written HTTP: the seed's four
  summaries, the text table, every export format, a 422 read as ``ErrorBody``, a training created, followed
  through its events, cancelled and cancelled again (409), a body over the limit (413), requests over the rate
  limit (429 with ``Retry-After``) and the health probes, ``HEAD`` included;
- ``openapi-typescript`` (npm) types and
- ``openapi-generator``'s ``typescript-fetch`` client (PyPI ``openapi-generator-cli``, which bundles the
  generator's jar and runs it on Java) compile with ``tsc --strict``, and every request body of the README's curl
  examples type-checks against them.

The node tools are pinned in ``tests/clients/package-lock.json`` and installed with ``npm ci``.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from app.spec.examples import SEED_MODELS, SEQ2SEQ
from tests.serving import ROOT, running_server
from tests.summaries.test_summary import EXPECTED

CLIENTS = ROOT / "tests" / "clients"
BIN = Path(sys.executable).parent
PACKAGE = "layerwise_client"

# A rate limit the flow stays under on every operation but the one it exhausts on purpose (getMetrics); a body
# limit a generated client can pass with a model of a few hundred layers; short trainings.
SERVER = {
    "LAYERWISE_RUNS_DB": ":memory:",
    "LAYERWISE_RATE_LIMIT": "15/minute",
    "LAYERWISE_MAX_ACTIVE_RUNS_PER_CLIENT": "10",
    "LAYERWISE_MAX_BODY_BYTES": "16384",
    "LAYERWISE_TRAINING_TIME_LIMIT_S": "60",
}


@dataclass
class Served:
    """The server under test and the OpenAPI document it serves, as a file for the generators."""

    base: str
    document: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The real server (``python -m app``) on a free loopback port, and its ``/openapi.json`` saved."""
    with running_server(SERVER) as base:
        path = tmp_path_factory.mktemp("openapi") / "openapi.json"
        path.write_text(httpx.get(f"{base}/openapi.json", timeout=30).text)
        yield Served(base, path)


def run(args: list[str], cwd: Path, timeout_s: float = 300) -> str:
    """Run a generator or compiler; its output is the assertion message when it fails."""
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    output = (done.stdout + done.stderr)[-12000:]
    assert done.returncode == 0, f"{' '.join(args[:3])} ... failed:\n{output}"
    return output


# ---------------------------------------------------------------------------------------------------------------
# Python: openapi-python-client


@dataclass
class PythonClient:
    """A generated ``openapi-python-client`` package, imported, and a client of the server."""

    package: ModuleType
    client: Any

    def op(self, operation_id: str) -> Any:
        """The generated module of an operation (``sync_detailed`` and friends), by its operationId."""
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()
        root = Path(self.package.__file__ or "").parent / "api"
        found = sorted(root.glob(f"*/{snake}.py"))
        available = sorted(p.stem for p in root.glob("*/*.py") if p.stem != "__init__")
        assert found, f"the generated client has no operation {operation_id} ({snake}); it has {available}"
        return importlib.import_module(f"{PACKAGE}.api.{found[0].parent.name}.{snake}")

    def model(self, name: str) -> Any:
        """A generated model class, by its component name."""
        models = importlib.import_module(f"{PACKAGE}.models")
        assert hasattr(models, name), f"the generated client has no model {name}"
        return getattr(models, name)


@pytest.fixture(scope="module")
def python_client(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PythonClient]:
    """Generate the Python client from the live document and import it."""
    out = tmp_path_factory.mktemp("python-client")
    config = out / "config.json"
    # No post hooks: the generator would run ruff over its output; formatting is not what is tested. It reads no
    # image types: the diagram's SVG is text, which the README's command says too.
    config.write_text(
        json.dumps(
            {
                "package_name_override": PACKAGE,
                "post_hooks": [],
                "content_type_overrides": {"image/svg+xml": "text/plain"},
            }
        )
    )
    output = run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(served.document),
            "--meta",
            "none",
            "--output-path",
            str(out / PACKAGE),
            "--config",
            str(config),
        ],
        cwd=out,
    )
    # Warnings are operations or models it could not generate: each one is something a client cannot call.
    assert "Warning" not in output, output
    sys.path.insert(0, str(out))
    try:
        package = importlib.import_module(PACKAGE)
        client = package.Client(base_url=served.base, raise_on_unexpected_status=True, timeout=httpx.Timeout(120))
        yield PythonClient(package, client)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def value(member: Any) -> Any:
    """An enum member's value (the generator makes enums of the document's enums), else the value itself."""
    return getattr(member, "value", member)


def error_types(body: Any) -> list[str]:
    """The ``type`` of each item of a generated ``ErrorBody``."""
    return [value(item.type_) for item in body.detail]


def test_the_readmes_python_example_runs(
    python_client: PythonClient, served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Generated clients") :]
    example = section[
        section.index("```python\n") + len("```python\n") : section.index("```\n", section.index("```python"))
    ]
    exec(example.replace("http://127.0.0.1:8000", served.base), {})
    assert capsys.readouterr().out == "6151\n"


def test_python_client_summarizes_the_seeds_four_models(python_client: PythonClient) -> None:
    summarize = python_client.op("summarizeModel")
    model_spec = python_client.model("ModelSpec")
    for name, (rows, total) in EXPECTED.items():
        r = summarize.sync_detailed(client=python_client.client, body=model_spec.from_dict(SEED_MODELS[name]))
        assert r.status_code == 200, r.content
        summary = r.parsed
        assert type(summary).__name__ == "ModelSummary"
        assert [(x.name, x.type_, x.output_shape, x.params) for x in summary.layers] == rows
        assert summary.total_params == total
        # Fields the service always sends are required in the document: plain values, never Unset.
        assert summary.batch_size == (5 if name.endswith("_batch") else 32)
        assert summary.warnings == []
        assert summary.training_memory.weights_bytes == total * 4
        assert summary.layers[0].mult_adds == 10 * 4 * 30 * 51
        assert f"Total params: {total:,}" in summary.text


def test_python_client_gets_the_text_table(python_client: PythonClient) -> None:
    r = python_client.op("summarizeModelText").sync_detailed(
        client=python_client.client, body=python_client.model("ModelSpec").from_dict(SEED_MODELS["seed_example_1"])
    )
    assert r.status_code == 200, r.content
    assert isinstance(r.parsed, str)
    assert r.parsed.startswith('Model: "seed_example_1"')
    assert "Total params: 6,151" in r.parsed


def test_python_client_exports_every_format(python_client: PythonClient) -> None:
    client = python_client.client
    spec = python_client.model("ModelSpec").from_dict(SEED_MODELS["seed_example_1"])

    r = python_client.op("exportKerasJson").sync_detailed(client=client, body=spec)
    assert r.status_code == 200, r.content
    keras_json = r.parsed
    assert type(keras_json).__name__ == "KerasModelConfig"
    assert keras_json.class_name == "Sequential"
    layers = keras_json.config.to_dict()["layers"]
    assert [layer["class_name"] for layer in layers] == ["InputLayer", "LSTM", "Dense"]

    r = python_client.op("exportPython").sync_detailed(client=client, body=spec)
    assert r.status_code == 200, r.content
    assert isinstance(r.parsed, str)
    assert "keras.layers.LSTM(units=30" in r.parsed

    # Keras's JSON goes back in as a body of its own type: the import, then the spec it stands for.
    r = python_client.op("exportSpec").sync_detailed(client=client, body=keras_json)
    assert r.status_code == 200, r.content
    back = r.parsed
    assert type(back).__name__ == "ModelSpec"
    assert [(type(layer).__name__, layer.name) for layer in back.layers] == [
        ("LSTM", "lstm_layer"),
        ("Dense", "dense_layer"),
    ]
    r = python_client.op("summarizeModel").sync_detailed(client=client, body=keras_json)
    assert r.status_code == 200, r.content
    assert r.parsed.total_params == 6151


def test_python_client_summarizes_and_draws_a_graph_model(python_client: PythonClient) -> None:
    client = python_client.client
    graph = python_client.model("GraphSpec").from_dict(SEQ2SEQ)
    r = python_client.op("summarizeModel").sync_detailed(client=client, body=graph)
    assert r.status_code == 200, r.content
    assert r.parsed.total_params == 718_173
    rows = {row.name: row for row in r.parsed.layers}
    assert rows["decoder_lstm"].connected_to == ["decoder_inputs", "encoder:1", "encoder:2"]
    r = python_client.op("drawModel").sync_detailed(client=client, body=graph)
    assert r.status_code == 200, r.content
    assert "<svg" in r.content.decode()


def test_python_client_reads_422s_as_error_body(python_client: PythonClient) -> None:
    client = python_client.client
    refused = python_client.model("ModelSpec").from_dict(
        {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 30}, {"type": "LSTM", "units": 8}]}
    )
    r = python_client.op("summarizeModel").sync_detailed(client=client, body=refused)
    assert r.status_code == 422
    assert type(r.parsed).__name__ == "ErrorBody"
    assert r.parsed.detail[0].loc == ["body", "layers", 1]
    assert error_types(r.parsed) == ["keras_build_error"]

    # The trainings' 422s have the same body (not FastAPI's HTTPValidationError).
    r = python_client.op("listTrainings").sync_detailed(client=client, cursor="not-a-cursor")
    assert r.status_code == 422
    assert type(r.parsed).__name__ == "ErrorBody"
    assert error_types(r.parsed) == ["cursor_invalid"]


def parse_event_stream(text: str) -> list[tuple[str, dict[str, Any], str | None]]:
    """A text/event-stream as (event, JSON data, id) triples. No generator reads an event stream as one: the
    generated client hands the stream over as text once it has ended (a run's stream ends with ``end``)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                key, _, rest = line.partition(":")
                fields[key] = rest.removeprefix(" ")
        if "data" in fields:
            events.append((fields.get("event", "message"), json.loads(fields["data"]), fields.get("id")))
    return events


def test_python_client_trains_follows_cancels(python_client: PythonClient) -> None:
    client = python_client.client
    training_spec = python_client.model("TrainingSpec")
    spec = training_spec.from_dict(
        {"model": SEED_MODELS["seed_example_1"], "data": {"samples": 64}, "fit": {"epochs": 2}, "seed": 0}
    )
    r = python_client.op("createTraining").sync_detailed(client=client, body=spec)
    assert r.status_code == 202, r.content
    run = r.parsed
    assert type(run).__name__ == "TrainingRun"
    assert r.headers["Location"] == f"/v1/trainings/{run.id}"
    # The run's request is typed as the training it is.
    assert type(run.request).__name__ == "TrainingSpec"
    assert run.request.fit.batch_size == 32

    r = python_client.op("followTraining").sync_detailed(run.id, client=client)
    assert r.status_code == 200, r.content
    events = parse_event_stream(r.parsed)
    kinds = [kind for kind, _, _ in events]
    assert kinds[0] == "status" and kinds[-1] == "end", kinds
    payloads = {
        "status": python_client.model("TrainingStatusEvent"),
        "batch": python_client.model("TrainingBatchEvent"),
        "epoch": python_client.model("TrainingEpochEvent"),
        "end": python_client.model("TrainingEndEvent"),
    }
    parsed = [(kind, payloads[kind].from_dict(data)) for kind, data, _ in events]
    assert [value(p.status) for kind, p in parsed if kind == "status"] == ["queued", "running"]
    assert [p.epoch for kind, p in parsed if kind == "epoch"] == [1, 2]
    end = parsed[-1][1].run
    assert value(end.status) == "succeeded"
    assert len(end.history.to_dict()["loss"]) == 2
    assert end.started_at is not None and end.finished_at is not None

    r = python_client.op("getTraining").sync_detailed(run.id, client=client)
    assert r.status_code == 200 and value(r.parsed.status) == "succeeded"
    page = python_client.op("listTrainings").sync_detailed(client=client, limit=1).parsed
    assert [item.id for item in page.items] == [run.id]
    assert page.next_cursor is None  # a required field: null on the last page, never Unset

    r = python_client.op("cancelTraining").sync_detailed(run.id, client=client)
    assert r.status_code == 409
    assert error_types(r.parsed) == ["conflict"]

    long = training_spec.from_dict(
        {"model": SEED_MODELS["seed_example_1"], "data": {"samples": 2000}, "fit": {"epochs": 50}}
    )
    created = python_client.op("createTraining").sync_detailed(client=client, body=long).parsed
    r = python_client.op("cancelTraining").sync_detailed(created.id, client=client)
    assert r.status_code == 200, r.content
    assert value(r.parsed.status) == "cancelled"


def test_python_client_gets_413_for_a_body_over_the_limit(python_client: PythonClient) -> None:
    huge = python_client.model("ModelSpec").from_dict(
        {"input_shape": [4], "layers": [{"type": "Dense", "units": 1}] * 1000}
    )
    r = python_client.op("summarizeModel").sync_detailed(client=python_client.client, body=huge)
    assert r.status_code == 413
    assert error_types(r.parsed) == ["body_too_large"]


def test_python_client_health_probes(python_client: PythonClient) -> None:
    client = python_client.client
    r = python_client.op("getHealth").sync_detailed(client=client)
    assert r.status_code == 200 and value(r.parsed.status) == "ok"
    r = python_client.op("headHealth").sync_detailed(client=client)
    assert r.status_code == 200 and r.content == b""
    r = python_client.op("getReadiness").sync_detailed(client=client)
    assert r.status_code == 200 and value(r.parsed.status) == "ready"
    assert r.parsed.pools.to_dict()["summary"]["ready"] >= 1
    r = python_client.op("headReadiness").sync_detailed(client=client)
    assert r.status_code == 200 and r.content == b""
    r = python_client.op("getMetrics").sync_detailed(client=client)
    assert r.status_code == 200 and "layerwise_workers" in r.parsed


def test_python_client_gets_429_with_retry_after(python_client: PythonClient) -> None:
    metrics = python_client.op("getMetrics")
    for _ in range(20):  # the limit is 15 a minute; a few were spent above
        r = metrics.sync_detailed(client=python_client.client)
        if r.status_code == 429:
            break
        assert r.status_code == 200
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert error_types(r.parsed) == ["rate_limited"]


# ---------------------------------------------------------------------------------------------------------------
# TypeScript: openapi-typescript and typescript-fetch, compiled with tsc --strict

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "target": "es2020",
        "module": "es2020",
        "moduleResolution": "node",
        "lib": ["es2020", "dom"],
        "skipLibCheck": False,
    }
}


@pytest.fixture(scope="module")
def node_tools() -> Path:
    """``tests/clients/node_modules/.bin``, installed with ``npm ci`` from the lock file when it is missing or
    older than the lock."""
    npm = shutil.which("npm")
    assert npm is not None, "npm (Debian's nodejs and npm) is needed for the TypeScript clients"
    installed = CLIENTS / "node_modules" / ".package-lock.json"
    lock = CLIENTS / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENTS)
    return CLIENTS / "node_modules" / ".bin"


@dataclass
class CurlBody:
    """One request body of the README: the line it is on, the path it is sent to, the JSON."""

    line: int
    path: str
    body: Any


def readme_bodies() -> list[CurlBody]:
    """Every JSON body sent with ``-d '...'`` by a curl example of the README (bodies read from a file with
    ``-d @file`` are left out: the file is an export the README made)."""
    text = (ROOT / "README.md").read_text()
    found = []
    for match in re.finditer(r"curl [^\n]*?localhost:8000(/[^\s'?]*)[^\n]*?(?:\\\n[^\n]*?)*?-d '([^']*)'", text):
        # A run's id is written $id in the README's shell; the document's path says {run_id}.
        path = match.group(1).replace("$id", "{run_id}")
        found.append(CurlBody(text.count("\n", 0, match.start()) + 1, path, json.loads(match.group(2))))
    return found


def test_the_readme_has_request_bodies_to_check() -> None:
    bodies = readme_bodies()
    paths = {body.path for body in bodies}
    assert {"/v1/models/summary", "/v1/models/export", "/v1/trainings"} <= paths, paths
    assert len(bodies) >= 10, [body.line for body in bodies]


def body_declarations(type_of: dict[str, str]) -> str:
    """TypeScript that assigns each README body, as an object literal (so unknown keys are errors too), to the
    request body type of its path."""
    lines = []
    for i, body in enumerate(readme_bodies()):
        assert body.path in type_of, f"README.md:{body.line} sends a body to {body.path}, which has no operation"
        lines.append(f"// README.md:{body.line}: POST {body.path}")
        lines.append(f"export const body{i}: {type_of[body.path]} = {json.dumps(body.body, indent=2)};")
    return "\n".join(lines) + "\n"


def test_openapi_typescript_types_compile_and_take_the_readme_bodies(
    served: Served, node_tools: Path, tmp_path: Path
) -> None:
    # As the README says to run it. openapi-typescript's defaultNonNullable (on by default) reads a field with a
    # default as one always present, true of answers (every field of which the document marks required) but
    # not of request bodies, whose defaulted fields are optional: off, they stay optional.
    run(
        [
            str(node_tools / "openapi-typescript"),
            str(served.document),
            "--default-non-nullable",
            "false",
            "-o",
            str(tmp_path / "schema.d.ts"),
        ],
        tmp_path,
    )
    body = 'NonNullable<paths["{path}"]["post"]["requestBody"]>["content"]["application/json"]'
    paths = (
        "/v1/models/summary",
        "/v1/models/export",
        "/v1/models/diagram",
        "/v1/trainings",
        "/v1/trainings/{run_id}/predict",
    )
    (tmp_path / "readme.ts").write_text(
        'import type { paths } from "./schema";\n\n' + body_declarations({p: body.format(path=p) for p in paths})
    )
    (tmp_path / "tsconfig.json").write_text(json.dumps({**TSCONFIG, "include": ["*.ts"]}))
    run([str(node_tools / "tsc"), "-p", "tsconfig.json"], tmp_path)


def test_typescript_fetch_client_compiles_and_takes_the_readme_bodies(
    served: Served, node_tools: Path, tmp_path: Path
) -> None:
    generator = BIN / "openapi-generator-cli"
    assert shutil.which("java"), "openapi-generator runs on Java (Debian's default-jre-headless)"
    run(
        [
            str(generator),
            "generate",
            "-i",
            str(served.document),
            "-g",
            "typescript-fetch",
            "-o",
            str(tmp_path / "fetch"),
            # JSON's own property names (input_shape, not inputShape), so a body is the README's JSON as it is.
            "--additional-properties=modelPropertyNaming=original,supportsES6=true",
        ],
        tmp_path,
    )
    # A body's type is the operation's request parameters less its query parameters.
    body = "Body<Parameters<{api}['{method}']>[0], {query}>"
    type_of = {
        "/v1/models/summary": body.format(api="ModelsApi", method="summarizeModel", query="'batchSize'"),
        "/v1/models/export": body.format(api="ModelsApi", method="exportModel", query="'format'"),
        "/v1/models/diagram": body.format(api="ModelsApi", method="drawModel", query="never"),
        "/v1/trainings": body.format(api="TrainingsApi", method="createTraining", query="'wait'"),
        "/v1/trainings/{run_id}/predict": body.format(api="TrainingsApi", method="predictTraining", query="'runId'"),
    }
    (tmp_path / "readme.ts").write_text(
        'import { ModelsApi, TrainingsApi } from "./fetch";\n\n'
        "type Body<P, Query extends PropertyKey> = Omit<P, Query>[keyof Omit<P, Query>];\n\n"
        + body_declarations(type_of)
    )
    (tmp_path / "tsconfig.json").write_text(json.dumps({**TSCONFIG, "include": ["*.ts", "fetch/**/*.ts"]}))
    run([str(node_tools / "tsc"), "-p", "tsconfig.json"], tmp_path)


def test_node_modules_stay_out_of_git() -> None:
    assert os.path.exists(CLIENTS / "package-lock.json")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(CLIENTS / "node_modules")], cwd=ROOT, capture_output=True
    )
    assert ignored.returncode == 0, "tests/clients/node_modules must be ignored by git"
