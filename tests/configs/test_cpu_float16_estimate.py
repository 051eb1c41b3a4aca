"""float16 on a worker without CUDA: the trainer runs it in float32, so the estimate and the linter say so."""

from __future__ import annotations

import pytest

from app.configs.estimates import estimate_memory, facts_from_gguf
from app.configs.linter import CudaCheck, LintContext, lint
from app.configs.schema import parse_config
from app.configs.templates import TEMPLATES_BY_KEY
from app.serving.default_model import default_gguf_path


@pytest.fixture(scope="module")
def facts():
    return facts_from_gguf(str(default_gguf_path()))


def config(dtype: str, device: str = "auto") -> dict:
    raw = TEMPLATES_BY_KEY["sft_toolbench"].build()
    raw["model"].update(torch_dtype=dtype, device=device)
    return raw


def spec(dtype: str, device: str = "auto"):
    parsed, problems = parse_config(config(dtype, device))
    assert parsed is not None, problems
    return parsed


def test_float16_without_cuda_is_estimated_as_the_float32_run_it_becomes(facts):
    # jobs.training.trainer.device_settings: float16 without CUDA trains in float32; bfloat16 stays.
    float32 = estimate_memory(spec("float32"), facts)
    assert estimate_memory(spec("float16"), facts) == float32
    assert estimate_memory(spec("float16", "cpu"), facts, cuda=True) == float32  # pinned to the CPU
    bf16 = estimate_memory(spec("bfloat16"), facts)
    assert bf16.weights_bytes == facts.parameters * 2
    # On a CUDA device float16 is what it says.
    assert estimate_memory(spec("float16"), facts, cuda=True).weights_bytes == facts.parameters * 2


def test_the_linter_warns_that_float16_will_not_fit_a_12_gib_cpu_worker(facts):
    report = lint(config("float16"), LintContext(model_facts=facts, machine_memory_bytes=12 * 2**30))
    assert "large_batch" in report.rules()
    float32 = lint(config("float32"), LintContext(model_facts=facts))
    assert report.memory.total_bytes == float32.memory.total_bytes


def test_float16_on_a_cpu_worker_is_a_warning_that_it_trains_in_float32(facts):
    no_cuda = CudaCheck(False, "the connected train worker(s) (cpu-box) have no CUDA device.")
    cpu_worker = LintContext(model_facts=facts, cuda=no_cuda)
    findings = [f for f in lint(config("float16"), cpu_worker).findings if f.rule == "float16_on_cpu"]
    assert [(f.severity, f.path) for f in findings] == [("warning", "model.torch_dtype")]
    assert "float32" in findings[0].message
    # Pinned to the CPU it is known without asking the workers.
    assert "float16_on_cpu" in lint(config("float16", "cpu"), LintContext(model_facts=facts)).rules()
    # A CUDA worker, or not knowing the workers (editing without a check), says nothing.
    gpu_worker = LintContext(model_facts=facts, cuda=CudaCheck(True))
    on_gpu = lint(config("float16"), gpu_worker)
    assert "float16_on_cpu" not in on_gpu.rules() and on_gpu.memory.weights_bytes == facts.parameters * 2
    assert "float16_on_cpu" not in lint(config("float16"), LintContext(model_facts=facts)).rules()
    assert "float16_on_cpu" not in lint(config("bfloat16"), cpu_worker).rules()
