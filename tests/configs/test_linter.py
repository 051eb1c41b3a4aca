"""The config schema and linter, without the app: templates, every rule, train.py configs, any JSON."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from app.configs.estimates import facts_from_gguf
from app.configs.linter import CudaCheck, DatasetFacts, LintContext, lint
from app.configs.schema import SECTIONS, json_schema, parse_config, train_py_shape
from app.configs.templates import TEMPLATES, TEMPLATES_BY_KEY
from app.serving.default_model import DEFAULT_MODEL_NAME, default_gguf_path

TRAIN_PY_EXAMPLE = {
    "model": {"name": "Qwen/Qwen3-0.6B", "trust_remote_code": True, "torch_dtype": "float16"},
    "training": {
        "method": "sft",
        "num_epochs": 1,
        "learning_rate": 5e-5,
        "batch_size": 4,
        "use_lora": True,
        "lora_r": 8,
        "lora_alpha": 32,
    },
}
DATASETS = {
    "tools-sft": DatasetFacts("sft", 400, length_bands={"1": 300, "3": 100}),  # every row under 512 tokens
    "prefs": DatasetFacts("dpo", 400),
    # 40 rows of 4,096+ tokens (all tools offered on every row): cut at any template's max length.
    "long-rows": DatasetFacts("sft", 400, length_bands={"2": 360, "32": 40}),
    "long-prefs": DatasetFacts("dpo", 400, length_bands={"2": 360, "32": 40}),
    # 12 of its 40 held-out rows ask what a training row asks.
    "leaky": DatasetFacts(
        "sft", 400, eval_rows=40, length_bands={"1": 400}, distinct_requests=388, eval_requests_in_train=12
    ),
    # 8 requests asked 50 times each: a random hold-out repeats training requests.
    "repetitive": DatasetFacts("sft", 400, length_bands={"1": 400}, distinct_requests=8),
}


@pytest.fixture(scope="module")
def context() -> LintContext:
    """What the app knows for a user on this machine: the default model's architecture, 24 GiB."""
    return LintContext(
        datasets=DATASETS,
        registry_models=frozenset({DEFAULT_MODEL_NAME}),
        model_facts=facts_from_gguf(str(default_gguf_path())),
        machine_memory_bytes=24 * 2**30,
    )


def sft() -> dict:
    return TEMPLATES_BY_KEY["sft_toolbench"].build()


def dpo() -> dict:
    return TEMPLATES_BY_KEY["dpo_basic"].build()


def with_(config: dict, path: str, value) -> dict:
    config = copy.deepcopy(config)
    *parents, key = path.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[key] = value
    return config


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.key)
def test_every_template_passes_the_linter_for_the_default_model(template, context):
    report = lint(template.build(), context)
    assert report.ok and report.findings == [], report.findings
    assert report.memory is not None and report.memory.total_bytes < context.machine_memory_bytes
    Draft202012Validator(json_schema()).validate(template.build())


# rule id → (minimal bad config, context changes)
ERROR_CASES = {
    "model_required": (with_(sft(), "model.name", "  "), {}),
    "batch_size_min": (with_(sft(), "training.batch_size", 0), {}),
    # Every row of "long-rows" is longer than 256 tokens: every answer cut, which the trainer refuses.
    "every_answer_cut": (with_(with_(sft(), "data.dataset", "long-rows"), "tokenizer.max_length", 256), {}),
    "learning_rate_positive": (with_(sft(), "training.learning_rate", 0.0), {}),
    "max_samples_min": (with_(sft(), "data.max_samples", 0), {}),
    "train_split_range": (with_(sft(), "data.train_split", 1.0), {}),
    "lora_r_required": (with_(sft(), "training.lora_r", None), {}),
    "dpo_needs_preference_dataset": (with_(dpo(), "data.dataset", "tools-sft"), {}),
    "qlora_needs_cuda": (
        with_(sft(), "training.use_qlora", True),
        {
            "cuda": CudaCheck(False, "the connected train worker(s) (w1) have no CUDA device."),
            "submitting": True,
        },
    ),
    "trust_remote_code_admin": (with_(sft(), "model.trust_remote_code", True), {}),
    "unknown_key": (with_(sft(), "training.lora_rank", 8), {}),
    "wrong_type": (with_(sft(), "training.batch_size", "4"), {}),
    "epochs_positive": (with_(sft(), "training.num_epochs", 0.0), {}),
    "max_steps_min": (with_(sft(), "training.max_steps", 0), {}),
    "eval_split_range": (with_(sft(), "data.eval_split", 0.5), {}),
    "qlora_needs_lora": (with_(with_(sft(), "training.use_qlora", True), "training.use_lora", False), {}),
    "dataset_unknown": (with_(sft(), "data.dataset", "someone-elses"), {}),
    "eval_set_not_sft": (with_(sft(), "evaluation.eval_set", "prefs"), {}),
    "teacher_required": (with_(TEMPLATES_BY_KEY["teacher_mode"].build(), "data.teacher_model", None), {}),
    "teacher_unknown": (with_(TEMPLATES_BY_KEY["teacher_mode"].build(), "data.teacher_model", "gpt-9"), {}),
    "tools_invalid": (
        with_(sft(), "tools", [{"type": "function", "function": {"description": "no name"}}]),
        {},
    ),
    "max_length_small": (with_(sft(), "tokenizer.max_length", 8), {}),
    "early_stopping_patience_min": (with_(sft(), "training.early_stopping_patience", 0), {}),
    "eval_steps_min": (with_(sft(), "logging.eval_steps", 0), {}),
    "hub_repo_id": (with_(sft(), "export.hub_repo_id", "no slash here"), {}),
    "hub_repo_missing": (with_(sft(), "export.push_to_hub", True), {}),
    "polynomial_below_end": (
        with_(with_(sft(), "training.lr_scheduler_type", "polynomial"), "training.learning_rate", 1e-8),
        {},
    ),
    "hub_token_missing": (
        with_(with_(sft(), "export.push_to_hub", True), "export.hub_repo_id", "alice/tiny-petstore"),
        {"has_hub_token": False},
    ),
}
WARNING_CASES = {
    "float32_memory": (with_(sft(), "model.torch_dtype", "float32"), {}),
    "lora_scale_tiny": (with_(with_(sft(), "training.lora_r", 256), "training.lora_alpha", 8), {}),
    "lora_r_above_hidden": (with_(with_(sft(), "training.lora_r", 1024), "training.lora_alpha", 2048), {}),
    "tokenizer_name_ignored": (with_(sft(), "tokenizer.name", "meta-llama/Llama-3.2-1B"), {}),
    "source_spec_unknown": (
        with_(sft(), "data.source_spec", "petstore"),
        {"spec_names": frozenset({"pets"})},
    ),
    "half_precision_full_finetune": (
        with_(with_(sft(), "model.torch_dtype", "bfloat16"), "training.use_lora", False),
        {},
    ),
    "high_learning_rate": (with_(sft(), "training.learning_rate", 5e-3), {}),
    "large_batch": (with_(sft(), "training.batch_size", 128), {}),
    "max_length_over_context": (with_(sft(), "tokenizer.max_length", 16384), {}),
    "too_few_steps": (with_(with_(sft(), "data.dataset", "tools-sft"), "training.max_steps", 3), {}),
    "too_many_steps": (with_(with_(sft(), "data.dataset", "tools-sft"), "training.num_epochs", 40.0), {}),
    "rows_over_max_length": (with_(sft(), "data.dataset", "long-rows"), {}),
    "eval_requests_in_train": (with_(sft(), "data.dataset", "leaky"), {}),
    "repeated_requests": (with_(sft(), "data.dataset", "repetitive"), {}),
    # 400 rows × 0.001 = 0.4: the split rounds it to no training row.
    "empty_train_split": (with_(with_(sft(), "data.dataset", "tools-sft"), "data.train_split", 0.001), {}),
    "lora_targets_unknown": (with_(sft(), "training.lora_target_modules", ["c_attn_typo"]), {}),
    "early_stopping_needs_eval": (
        with_(with_(sft(), "training.early_stopping_patience", 2), "data.eval_split", 0.0),
        {},
    ),
    "early_stopping_never": (
        with_(with_(sft(), "data.dataset", "tools-sft"), "training.early_stopping_patience", 50),
        {},
    ),
    "qlora_needs_cuda": (
        with_(sft(), "training.use_qlora", True),
        {"cuda": CudaCheck(False, "no worker is listening on the train queue.")},
    ),
    "no_metrics": (with_(sft(), "evaluation.metrics", []), {}),
    "evaluation_needs_eval": (with_(sft(), "data.eval_split", 0.0), {}),
    "logging_never": (
        with_(
            with_(with_(sft(), "data.dataset", "tools-sft"), "training.max_steps", 60),
            "logging.logging_steps",
            100,
        ),
        {},
    ),
    "metrics_need_export": (with_(sft(), "export.quantization_types", []), {}),
    "hub_no_gguf": (
        with_(
            with_(with_(sft(), "export.push_to_hub", True), "export.hub_repo_id", "alice/tiny"),
            "export.quantization_types",
            [],
        ),
        {},
    ),
}


def _context(base: LintContext, changes: dict) -> LintContext:
    return LintContext(**{**base.__dict__, **changes})


@pytest.mark.parametrize("rule", ERROR_CASES)
def test_each_error_rule_fires_on_its_minimal_bad_config(rule, context):
    config, changes = ERROR_CASES[rule]
    report = lint(config, _context(context, changes))
    assert rule in {f.rule for f in report.errors}, report.findings
    assert not report.ok
    assert all(f.path is not None and f.message for f in report.findings)


@pytest.mark.parametrize("rule", WARNING_CASES)
def test_each_warning_rule_fires_on_its_minimal_config_and_allows_save(rule, context):
    config, changes = WARNING_CASES[rule]
    report = lint(config, _context(context, changes))
    assert rule in {f.rule for f in report.warnings}, report.findings
    assert report.ok and report.status == "warnings"


def test_no_rule_fires_on_good_configs_in_any_context(context):
    """Templates, with datasets of the right kind and a CUDA worker at submit, stay clean."""
    cuda = _context(context, {"cuda": CudaCheck(True), "submitting": True, "is_admin": True})
    for template in TEMPLATES:
        config = template.build()
        config["data"]["dataset"] = "prefs" if config["training"]["method"] == "dpo" else "tools-sft"
        for ctx in (context, cuda):
            assert lint(config, ctx).findings == [], (template.key, lint(config, ctx).findings)
    assert lint(with_(sft(), "training.use_qlora", True), cuda).findings == []
    named = with_(sft(), "data.source_spec", "petstore")
    assert lint(named, context).findings == []  # the user's specs unknown: a file linted on its own
    assert lint(named, _context(context, {"spec_names": frozenset({"petstore"})})).findings == []


def test_findings_name_the_field_they_are_about(context):
    report = lint(with_(with_(sft(), "training.batch_size", 0), "data.train_split", 0.0), context)
    paths = {f.path for f in report.errors}
    assert paths == {"training.batch_size", "data.train_split"}
    typed = lint({"training": {"learning_rate": "fast", "lora_r": 8.5}, "oops": 1}, context)
    assert {(f.path, f.rule) for f in typed.errors} == {
        ("training.learning_rate", "wrong_type"),
        ("training.lora_r", "wrong_type"),
        ("oops", "unknown_key"),
    }


def test_train_py_config_loads_as_is_and_round_trips_for_an_admin(context):
    admin = _context(context, {"is_admin": True})
    report = lint(TRAIN_PY_EXAMPLE, admin)
    assert report.ok and report.config.model.torch_dtype == "float16"
    downloaded = train_py_shape(report.config)
    assert set(downloaded) <= set(SECTIONS) and "export" not in downloaded
    for section, values in TRAIN_PY_EXAMPLE.items():
        for key, value in values.items():
            assert downloaded[section][key] == value
    again = lint(json.loads(json.dumps(downloaded)), admin)
    assert again.ok and again.config == report.config


def test_train_py_config_reports_trust_remote_code_for_a_non_admin(context):
    report = lint(TRAIN_PY_EXAMPLE, context)
    assert [f.rule for f in report.errors] == ["trust_remote_code_admin"]
    assert report.errors[0].path == "model.trust_remote_code"


def test_not_an_object_is_one_clear_error():
    for value in (None, [], "config", 3, True):
        report = lint(value)
        assert report.config is None and len(report.errors) == 1 and report.errors[0].path == ""


def test_parse_rejects_nan_and_infinity():
    _, problems = parse_config({"training": {"learning_rate": float("nan")}})
    assert problems and problems[0][0] == "training.learning_rate"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
SECTION_KEYS = st.sampled_from(
    ["model", "tokenizer", "training", "data", "tools", "evaluation", "logging", "export", "seed", "name"]
)
FIELD_KEYS = st.sampled_from(
    [
        "name",
        "batch_size",
        "learning_rate",
        "lora_r",
        "use_lora",
        "use_qlora",
        "method",
        "dataset",
        "train_split",
        "max_samples",
        "metrics",
        "quantization_types",
        "max_length",
        "strategy",
        "teacher_model",
        "lora_target_modules",
        "num_epochs",
        "max_steps",
        "trust_remote_code",
        "torch_dtype",
        "eval_split",
    ]
)
CONFIG_SHAPED = st.dictionaries(
    SECTION_KEYS, st.dictionaries(FIELD_KEYS, JSON_VALUES, max_size=6) | JSON_VALUES
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_VALUES | CONFIG_SHAPED)
def test_no_json_value_makes_the_linter_raise(value, context):
    report = lint(value, context)
    assert report.ok or report.errors
    assert report.status in ("valid", "warnings", "errors")


def test_time_estimate_only_from_a_measured_throughput_and_a_known_dataset(context):
    from app.configs.linter import DatasetFacts, Throughput

    config = with_(with_(sft(), "data.dataset", "sized"), "training.num_epochs", 2.0)
    datasets = {"sized": DatasetFacts("sft", 400, mean_tokens=150)}
    assert lint(config, _context(context, {"datasets": datasets})).time is None  # nothing measured yet
    measured = _context(context, {"datasets": datasets, "throughput": Throughput(200.0, run_id=7)})
    estimate = lint(config, measured).time
    # 400 rows × 0.9 train = 360 rows, batch 4 → 90 steps per epoch, 2 epochs = 180 steps of 4 rows.
    assert estimate.steps == 180 and estimate.tokens == 180 * 4 * 150
    assert estimate.seconds == pytest.approx(180 * 4 * 150 / 200.0)
    assert lint(sft(), measured).time is None  # no dataset picked


def test_rows_over_max_length_counts_whole_bands_and_a_share_of_the_one_it_cuts(context):
    facts = DATASETS["long-rows"]
    assert facts.rows_longer_than(512) == 40 and facts.rows_longer_than(256) == 400
    assert facts.rows_longer_than(4097) == 40  # 127 of the band's 128 tokens lie past it
    assert facts.rows_longer_than(320) == 180 + 40  # half of the 256–384 band
    assert facts.rows_longer_than(4224) == 0
    assert DatasetFacts("sft", 10).rows_longer_than(16) is None
    report = lint(with_(sft(), "data.dataset", "long-rows"), context)
    (finding,) = [f for f in report.warnings if f.rule == "rows_over_max_length"]
    assert (
        finding.path == "tokenizer.max_length"
        and "About 40 of the dataset's 400 rows (10%)" in finding.message
    )
    assert "A max length of 4,224 fits 95% of them" in finding.message  # 360 rows under 384, 40 past 4,096
    assert facts.length_fitting(0.9) == 384 and DatasetFacts("sft", 3).length_fitting(0.95) is None
    longer = lint(with_(with_(sft(), "data.dataset", "long-rows"), "tokenizer.max_length", 8192), context)
    assert "rows_over_max_length" not in {f.rule for f in longer.findings}


def test_every_answer_cut_is_an_error_for_sft_only_and_only_when_no_row_fits(context):
    every = with_(with_(sft(), "data.dataset", "long-rows"), "tokenizer.max_length", 256)
    assert "every_answer_cut" in {f.rule for f in lint(every, context).errors}
    # DPO trains on what TRL's cut leaves of prompt and answers: a warning, not a refusal.
    dpo_every = with_(with_(dpo(), "data.dataset", "long-prefs"), "tokenizer.max_length", 256)
    report = lint(dpo_every, context)
    assert "every_answer_cut" not in {f.rule for f in report.findings}
    assert "rows_over_max_length" in {f.rule for f in report.warnings}
    # 10 rows of 256–383 tokens under 260: about 9.7 of them are longer, "all" once rounded, yet some fit.
    straddling = DatasetFacts("sft", 10, length_bands={"2": 10})
    assert straddling.rows_longer_than(260) == 10 and not straddling.every_row_longer_than(260)
    assert straddling.every_row_longer_than(256)


def test_a_batch_of_zero_gets_its_error_and_no_estimate(context):
    report = lint(with_(sft(), "training.batch_size", 0), context)
    assert "batch_size_min" in {f.rule for f in report.errors} and report.memory is None


def test_the_max_length_that_fits_comes_with_the_batch_size_that_fits_the_worker(context):
    """Raising max length alone can ask for several times the machine: the advice names a batch size
    that fits (with the accumulation that keeps the effective batch), or says none does."""
    config = with_(with_(sft(), "data.dataset", "long-rows"), "training.batch_size", 64)
    (finding,) = [f for f in lint(config, context).warnings if f.rule == "rows_over_max_length"]
    said = finding.message.split(
        "A max length of 4,224 fits 95% of them within the worker's memory at batch size "
    )
    assert len(said) == 2, finding.message
    batch = int(said[1].split(" ")[0])
    assert (
        1 <= batch < 64
        and f"(gradient accumulation {64 * sft()['training']['gradient_accumulation_steps'] // batch}"
        in said[1]
    )
    at = with_(with_(config, "tokenizer.max_length", 4224), "training.batch_size", batch)
    assert lint(at, context).memory.total_bytes <= context.machine_memory_bytes
    tiny_machine = LintContext(**{**vars(context), "machine_memory_bytes": 2 * 2**30})
    (finding,) = [f for f in lint(config, tiny_machine).warnings if f.rule == "rows_over_max_length"]
    assert "even at batch size 1, more than the worker's 2.0 GiB" in finding.message


def test_early_stopping_with_held_out_rows_and_enough_evaluations_is_clean(context):
    config = with_(with_(sft(), "data.dataset", "tools-sft"), "training.early_stopping_patience", 2)
    config = with_(config, "logging.eval_steps", 5)
    report = lint(config, context)
    assert not [f for f in report.findings if "early_stopping" in f.rule], report.findings
    held_out = {"held-out": DatasetFacts("sft", 400, eval_rows=40)}  # rows marked eval: split 0 is fine
    marked = with_(
        with_(with_(config, "data.dataset", "held-out"), "data.eval_split", 0.0), "data.train_split", 0.9
    )
    report = lint(marked, _context(context, {"datasets": held_out}))
    assert "early_stopping_needs_eval" not in {f.rule for f in report.findings}


def test_request_overlap_warnings_name_the_counts_and_stay_quiet_on_clean_data(context):
    leaky = lint(with_(sft(), "data.dataset", "leaky"), context)
    (finding,) = [f for f in leaky.warnings if f.rule == "eval_requests_in_train"]
    assert finding.path == "data.dataset" and finding.message.startswith("12 of the 40 held-out rows")
    repetitive = lint(with_(sft(), "data.dataset", "repetitive"), context)
    (finding,) = [f for f in repetitive.warnings if f.rule == "repeated_requests"]
    assert "Only 8 distinct requests among 400 rows" in finding.message and "10%" in finding.message
    # No random hold-out, nothing to warn about; nor for datasets counted before the figures existed.
    quiet = lint(with_(with_(sft(), "data.dataset", "repetitive"), "data.eval_split", 0.0), context)
    assert not {"repeated_requests", "eval_requests_in_train"} & {f.rule for f in quiet.findings}
    clean = lint(with_(sft(), "data.dataset", "tools-sft"), context)
    assert not {"repeated_requests", "eval_requests_in_train"} & {f.rule for f in clean.findings}
