"""The product loop on the real SmolLM2-135M, on CPU: Petstore → generated dataset → LoRA SFT for a few
minutes through a real worker → Q4_K_M → evaluated and served. Slow (about five minutes), run in CI.

The thresholds were measured on this path (docs/benchmarks.md, "End to end"): the base model makes no
correct Petstore call on these held-out prompts (0 of 20); after 40 LoRA steps 12 of 20 were exact,
16 of 20 valid (2026-11-24). 40 steps of 2 rows see 80 of the 220 training rows, so which 80 (the
sampler's order) moves the figure: with batches drawn per epoch from seed + epoch (2026-11-25) 11 of 20
were exact, 17 valid. The floor leaves two rows of room under that.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.configs.templates import TEMPLATES_BY_KEY
from app.extensions import db
from app.models import LLMModel, TrainingConfig, TrainingRun
from tests.conftest import csrf_token, start_worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

PETSTORE = (
    Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "openapi" / "petstore-v2.swagger2.0.yaml"
)
STEPS = 40
BATCH = 2
MIN_EXACT = 0.45  # measured 0.55 and 0.6: see the module docstring
MIN_GAIN_OVER_BASE = 0.4
EVAL_ROWS = 20
SERVED_PROMPTS = 5


def petstore_rows() -> list[dict]:
    from app.datasets.generation import GenerationOptions, generate_dataset
    from app.openapi.normalise import normalise
    from app.openapi.parsing import load_document

    spec = normalise(load_document(PETSTORE.read_bytes(), PETSTORE.name))
    options = GenerationOptions(samples_per_operation=12, seed=5, include_irrelevant=False, tools_per_row=2)
    generated = generate_dataset(spec, options)
    held = [r for r in generated.rows if r["split"] == "eval"][:EVAL_ROWS]
    return [r for r in generated.rows if r["split"] == "train"] + held


def test_petstore_to_a_served_model_that_calls_the_api(app, signed_in, tmp_path):
    from app.datasets.services import store_rows

    client, user = signed_in()
    with app.test_request_context():
        dataset = store_rows(
            user.id, "petstore", "sft", petstore_rows(), source="generated", source_format="toolsmith"
        )
        dataset_id = dataset.id
    config = TEMPLATES_BY_KEY["sft_toolbench"].build()
    config["tokenizer"]["max_length"] = 1024
    config["training"].update(
        {"max_steps": STEPS, "batch_size": BATCH, "learning_rate": 1e-3, "lora_r": 16, "lora_alpha": 32}
    )
    config["logging"]["logging_steps"] = 10  # checkpoints and evaluations every 50: only the final one
    config["export"]["quantization_types"] = ["Q4_K_M"]
    config["evaluation"]["enabled"] = True
    with app.app_context():
        row = TrainingConfig(
            owner_id=user.id, name="petstore lora", template_type="sft_toolbench", config=config
        )
        db.session.add(row)
        db.session.commit()
        config_id = row.id
    data = {
        "csrf_token": csrf_token(client, "/runs/"),
        "config_id": str(config_id),
        "dataset_id": str(dataset_id),
    }
    response = client.post("/runs/", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    run_id = int(response.headers["Location"].rstrip("/").split("/")[-1])

    started = time.monotonic()
    worker = start_worker(app, "train", "export", "--burst", log_path=tmp_path / "worker.log")
    assert worker.wait(timeout=1500) == 0, (tmp_path / "worker.log").read_text()[-4000:]
    with app.app_context():
        run = db.session.get(TrainingRun, run_id)
        assert run.stage == "done", run.error
        tuned = run.evaluation
        model = db.session.get(LLMModel, run.model_ids[0])
        db.session.expunge(model)
        eval_rows_path = Path(run.output_dir) / "eval_rows.jsonl"
    print(f"run took {time.monotonic() - started:.0f} s; tuned {tuned}")

    import json

    from app.serving import generate
    from app.serving.default_model import default_gguf_path
    from app.serving.tool_calls import parse_tool_calls
    from app.serving.tool_schema import check_tool_call
    from app.serving.types import SamplingParams
    from jobs.training.evaluate import evaluate_gguf

    eval_rows = [json.loads(line) for line in eval_rows_path.read_text().splitlines()]
    base = evaluate_gguf(default_gguf_path(), eval_rows).metrics()
    print(f"base {base}")
    assert tuned["eval_rows"] == len(eval_rows) == EVAL_ROWS
    assert tuned["tool_call_accuracy"] >= MIN_EXACT
    assert tuned["tool_call_accuracy"] >= base["tool_call_accuracy"] + MIN_GAIN_OVER_BASE
    assert model.quantization == "Q4_K_M"

    # Served like the playground serves it (the registered model, through the chat layer): the first
    # held-out prompts get calls that fit Petstore's schemas.
    fitting = 0
    with app.app_context():
        for row in eval_rows[:SERVED_PROMPTS]:
            params = SamplingParams(temperature=0.0, max_tokens=128)
            reply = generate(model, row["messages"][:-1], params, tools=row["tools"])
            calls = parse_tool_calls(reply.text)
            fitting += bool(calls) and not check_tool_call(row["tools"], calls[0].name, calls[0].arguments)
    assert fitting > SERVED_PROMPTS // 2, fitting
