"""Early stopping: the tiny model stops once its eval loss stops improving and keeps the best weights;
without held-out rows it is off."""

from __future__ import annotations

from pathlib import Path

from app.configs.schema import TrainingConfigSpec
from jobs.training.data import Splits
from jobs.training.trainer import TrainingHooks, train
from tests.training.test_pipeline import sft_rows


def config(**training) -> TrainingConfigSpec:
    return TrainingConfigSpec.model_validate(
        {
            "model": {"name": "tiny", "torch_dtype": "float32"},
            "tokenizer": {"max_length": 256},
            "training": {"method": "sft", "max_steps": 30, "batch_size": 4, "warmup_ratio": 0.0, **training},
            "logging": {"logging_steps": 1, "eval_steps": 2},
            "export": {"quantization_types": []},
        }
    )


def test_a_run_whose_eval_loss_stops_improving_stops_and_keeps_the_best_weights(tiny_model, tmp_path):
    # A learning rate of 0: the weights never move, so every evaluation after the first fails to
    # improve on it and a patience of 2 stops the run at the third evaluation (step 6 of 30).
    logs = []
    outcome = train(
        tiny_model,
        tmp_path,
        config(learning_rate=0.0, early_stopping_patience=2),
        Splits(train=sft_rows(16), eval=sft_rows(4)),
        TrainingHooks(on_log=logs.append),
    )
    assert outcome.global_step == 6 and not outcome.stopped
    assert outcome.best is not None and (outcome.best.step, outcome.best.stopped_early) == (2, True)
    evaluated = [r.eval_loss for r in logs if r.eval_loss is not None]
    assert len(evaluated) == 3 and outcome.best.eval_loss == evaluated[0]
    assert (outcome.adapter_dir / "adapter_model.safetensors").is_file()


def test_early_stopping_is_off_without_held_out_rows():
    from jobs.training.trainer import common_args, device_settings

    on = config(early_stopping_patience=2)
    args = common_args(on, Path("out"), device_settings(on), has_eval=False)
    assert "load_best_model_at_end" not in args and args["eval_strategy"] == "no"
    args = common_args(on, Path("out"), device_settings(on), has_eval=True)
    assert (args["load_best_model_at_end"], args["eval_steps"], args["save_steps"]) == (True, 2, 2)


def test_the_kept_weights_are_those_of_the_best_evaluation(tiny_model, tmp_path):
    from safetensors.torch import load_file

    logs = []
    outcome = train(
        tiny_model,
        tmp_path,
        config(learning_rate=0.05, early_stopping_patience=1, max_steps=12),
        Splits(train=sft_rows(16), eval=sft_rows(4)),
        TrainingHooks(on_log=logs.append),
    )
    evaluated = {r.step: r.eval_loss for r in logs if r.eval_loss is not None}
    assert outcome.best.eval_loss == min(evaluated.values())
    assert evaluated[outcome.best.step] == outcome.best.eval_loss
    kept = load_file(outcome.adapter_dir / "adapter_model.safetensors")
    best = load_file(tmp_path / f"checkpoint-{outcome.best.step}" / "adapter_model.safetensors")
    last = load_file(tmp_path / f"checkpoint-{outcome.global_step}" / "adapter_model.safetensors")
    assert kept.keys() == best.keys() and all((kept[k] == best[k]).all() for k in kept)
    if outcome.best.step != outcome.global_step:  # then the last weights differ and were not kept
        assert any((kept[k] != last[k]).any() for k in kept)


def test_the_run_page_says_where_the_run_stopped_and_which_weights_it_kept(app, signed_in):
    from tests.training.test_compare_runs import make_run

    client, user = signed_in()
    fields = {"stage": "done", "step": 6, "total_steps": 30}
    stopped = make_run(
        app, user, "early", "sft_toolbench", best_step=2, best_eval_loss=3.2109, stopped_early=True, **fields
    )
    page = client.get(f"/runs/{stopped}").get_data(as_text=True)
    assert (
        "stopped early: the eval loss stopped improving · kept the weights of step 2 (eval loss 3.2109)"
        in page
    )
    plain = make_run(app, user, "plain", "sft_toolbench", **fields)
    assert 'id="best-step"' not in client.get(f"/runs/{plain}").get_data(as_text=True)


def test_the_loss_card_shows_the_latest_eval_loss_beside_the_last_batchs(app, signed_in):
    from tests.training.test_compare_runs import make_run

    client, user = signed_in()
    metrics = [(2, 1.9, None, 100.0), (2, None, 0.8123, None), (4, 1.3999, None, 100.0)]
    run_id = make_run(app, user, "noisy", "sft_toolbench", metrics=metrics, stage="done", step=4, loss=1.3999)
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert '<span id="last-eval-loss">eval 0.8123</span>' in page
    # The chart's labels are sized in its own units (from the page they grew with the chart's width).
    assert 'class="chart" viewBox="0 0 640 220" font-size="12"' in page
    bare = make_run(app, user, "no-eval", "sft_toolbench", metrics=metrics[:1], stage="done", step=2)
    assert 'id="last-eval-loss"' not in client.get(f"/runs/{bare}").get_data(as_text=True)
