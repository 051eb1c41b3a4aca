"""The config linter: every mistake that would waste a training run, caught before it starts.

Errors block save, download and submit; warnings do not. Each finding names the field it is about
(`training.batch_size`), so the editor shows it next to that field, and a rule id, so tests can
check that each rule fires on its minimal bad config and on no good one. `lint` never raises, on
any JSON value at all (a hypothesis test holds it to that): what it cannot type-check it reports.

What the linter needs to know beyond the config comes in a `LintContext`: who is asking (admins
only may run a repository's own code), the user's datasets and registry models by name, the model's
architecture (context length, size), the memory of the machine the worker runs on, and, at submit
time, whether a CUDA worker is connected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from app.configs.chat_template_check import chat_template_problem, training_format_difference
from app.configs.estimates import (
    LLAMA_PROJECTIONS,
    MemoryEstimate,
    ModelFacts,
    SplitSizes,
    estimate_memory,
    estimate_seconds,
    planned_steps,
    split_sizes,
)
from app.configs.schema import TrainingConfigSpec, answer_metrics, evaluation_interval, parse_config
from app.serving.tool_schema import validate_tool_definitions

Severity = Literal["error", "warning"]

HIGH_LEARNING_RATE = 1e-3
LARGE_BATCH = 64
FEWEST_STEPS = 10
MOST_EPOCHS = 10


@dataclass(frozen=True)
class DatasetFacts:
    kind: str  # "sft" | "dpo"
    rows: int
    eval_rows: int = 0  # rows marked as held out (kept out of training whatever the eval split)
    # Rows marked for training (trained on whatever the train split); None for datasets counted before
    # they kept it (then taken as none).
    marked_train_rows: int | None = None
    mean_tokens: int | None = None  # per row, with the default tokenizer
    # Rows per length band: {band: rows}, band b holding rows of b * length_band to (b + 1) * length_band
    # tokens (the dataset's figures; None for datasets counted before they kept it).
    length_bands: Mapping[str, int] | None = None
    length_band: int = 128
    # The bands of the rows that offer no tools of their own, where a config's `tools` are offered (None
    # for datasets counted before they kept it: the config's tools are then left out of the count).
    length_bands_without_tools: Mapping[str, int] | None = None
    # Requests (user messages) asked by the rows: how many distinct ones, and how many held-out rows ask
    # one that a training row asks too (None for datasets counted before they kept these).
    distinct_requests: int | None = None
    eval_requests_in_train: int | None = None

    def split(self, config: TrainingConfigSpec) -> SplitSizes:
        """The rows a run of `config` trains on and holds out (`jobs.training.data.split_rows`)."""
        d = config.data
        marked_train = self.marked_train_rows or 0
        unmarked = max(0, self.rows - self.eval_rows - marked_train)
        max_samples = d.max_samples if d.max_samples and d.max_samples > 0 else None
        return split_sizes(unmarked, marked_train, self.eval_rows, d.train_split, d.eval_split, max_samples)

    def length_fitting(self, share: float, tools_tokens: int = 0) -> int | None:
        """The smallest band edge (tokens) that at least `share` of the rows fit under, the rows without
        tools of their own `tools_tokens` longer (a config's tools, offered there)."""
        if not self.length_bands or not self.rows:
            return None
        bare = self.length_bands_without_tools if tools_tokens else None
        edges = {(int(band) + 1) * self.length_band for band in self.length_bands}
        edges |= {(int(band) + 1) * self.length_band + tools_tokens for band in bare or {}}
        total = sum(self.length_bands.values())
        for edge in sorted(edges):
            if total - self._longer_than(edge, tools_tokens) >= share * self.rows:
                return edge
        return None

    def rows_longer_than(self, tokens: int, tools_tokens: int = 0) -> int | None:
        """About how many rows are longer than `tokens`: whole bands from there on, and of the band that
        straddles it the share past it (its rows taken as spread evenly). Counting only whole bands
        missed a dataset of 213-token rows under a max length of 200: every answer cut, no warning.
        `tools_tokens`: what a config's tools add to the rows that offer none of their own."""
        if self.length_bands is None:
            return None
        return round(self._longer_than(tokens, tools_tokens))

    def every_row_longer_than(self, tokens: int, tools_tokens: int = 0) -> bool:
        """Whether every row is longer than `tokens` for certain: no band even straddles it (a rounded
        count of 9.6 of 10 rows would say "all" where some rows fit)."""
        total = sum((self.length_bands or {}).values())
        return total > 0 and self._longer_than(tokens, tools_tokens) >= total

    def _longer_than(self, tokens: int, tools_tokens: int) -> float:
        over = _rows_past(self.length_bands or {}, tokens, self.length_band)
        if tools_tokens and self.length_bands_without_tools:
            # Those rows are `tools_tokens` longer: longer than `tokens` once longer than that much less.
            bare = self.length_bands_without_tools
            over += _rows_past(bare, tokens - tools_tokens, self.length_band) - _rows_past(
                bare, tokens, self.length_band
            )
        return over


def _rows_past(bands: Mapping[str, int], tokens: int, width: int) -> float:
    """The rows of `bands` longer than `tokens`, those of the band that straddles it spread evenly."""
    return sum(
        count * min(1.0, max(0.0, ((int(band) + 1) * width - tokens) / width))
        for band, count in bands.items()
    )


@dataclass(frozen=True)
class Throughput:
    """Real tokens per second an earlier run of the same base model measured on a worker."""

    tokens_per_second: float
    run_id: int


@dataclass(frozen=True)
class TimeEstimate:
    seconds: float
    steps: int
    tokens: int
    throughput: Throughput


@dataclass(frozen=True)
class CudaCheck:
    """Whether a connected `train` worker has a CUDA device, and why not when it has none."""

    available: bool
    reason: str = ""


@dataclass
class LintContext:
    is_admin: bool = False
    datasets: Mapping[str, DatasetFacts] = field(default_factory=dict)
    registry_models: frozenset[str] = frozenset()
    model_facts: ModelFacts | None = None
    machine_memory_bytes: int | None = None
    cuda: CudaCheck | None = None  # known at submit time only
    submitting: bool = False
    throughput: Throughput | None = None
    has_hub_token: bool | None = None  # None: unknown (linting a file, not a user's run)
    spec_names: frozenset[str] | None = None  # the user's specs; None: unknown (linting a file)


@dataclass(frozen=True)
class Finding:
    severity: Severity
    path: str  # dotted field path, "" for the whole config
    message: str
    rule: str


@dataclass
class LintReport:
    config: TrainingConfigSpec | None
    findings: list[Finding]
    memory: MemoryEstimate | None = None
    machine_memory_bytes: int | None = None
    time: TimeEstimate | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return self.config is not None and not self.errors

    @property
    def status(self) -> str:
        """valid | warnings | errors, as the config cards show it."""
        if self.errors:
            return "errors"
        return "warnings" if self.warnings else "valid"

    def by_path(self) -> dict[str, list[Finding]]:
        grouped: dict[str, list[Finding]] = {}
        for finding in self.findings:
            grouped.setdefault(finding.path, []).append(finding)
        return grouped

    def rules(self) -> set[str]:
        return {f.rule for f in self.findings}


def lint(raw: Any, context: LintContext | None = None) -> LintReport:
    context = context or LintContext()
    config, problems = parse_config(raw)
    if config is None:
        rule = "unknown_key"
        findings = [
            Finding("error", path, message, rule if message.startswith("Unknown key") else "wrong_type")
            for path, message in problems
        ]
        return LintReport(None, findings)
    findings: list[Finding] = []
    memory = None
    # No estimate for a batch of 0 (an error already): it would be batch 1's figure labelled "batch 0".
    if config.model.name.strip() and context.model_facts is not None and config.training.batch_size >= 1:
        # The dtype the worker will train in: a connected CUDA worker when the context knows one.
        cuda = context.cuda is not None and context.cuda.available
        memory = estimate_memory(config, context.model_facts, cuda=cuda)
    for rule in RULES:
        findings.extend(rule(config, context, memory))
    return LintReport(config, findings, memory, context.machine_memory_bytes, _time(config, context))


def _time(config: TrainingConfigSpec, ctx: LintContext) -> TimeEstimate | None:
    """Only from a measured throughput and a dataset whose size and row length are known."""
    dataset = ctx.datasets.get(config.data.dataset) if config.data.dataset else None
    if ctx.throughput is None or dataset is None or not dataset.mean_tokens or dataset.rows < 1:
        return None
    t = config.training
    if t.batch_size < 1 or t.gradient_accumulation_steps < 1 or not 0 < config.data.train_split < 1:
        return None
    train_rows = dataset.split(config).train
    if train_rows < 1:
        return None
    steps = planned_steps(config, train_rows)
    rows_seen = steps * t.batch_size * t.gradient_accumulation_steps
    tokens = rows_seen * min(dataset.mean_tokens, config.tokenizer.max_length)
    seconds = estimate_seconds(tokens, ctx.throughput.tokens_per_second)
    return TimeEstimate(seconds, steps, tokens, ctx.throughput) if seconds is not None else None


# --- rules: each takes (config, context, memory estimate) and yields findings -------------------------


def _error(path: str, message: str, rule: str) -> Finding:
    return Finding("error", path, message, rule)


def _warning(path: str, message: str, rule: str) -> Finding:
    return Finding("warning", path, message, rule)


def model_rules(c: TrainingConfigSpec, ctx: LintContext, _memory):
    if not c.model.name.strip():
        yield _error(
            "model.name",
            "A base model is required: a Hub id or a folder under the model store.",
            "model_required",
        )
    if c.model.trust_remote_code and not ctx.is_admin:
        yield _error(
            "model.trust_remote_code",
            "Only an admin may run a model repository's own code (trust_remote_code).",
            "trust_remote_code_admin",
        )
    if c.model.torch_dtype == "float32":
        yield _warning(
            "model.torch_dtype",
            "float32 needs twice the memory of bfloat16 for weights and activations on a GPU, and "
            "turns off the bf16 autocast that CPU workers with bf16 instructions use; auto picks the "
            "best for each worker.",
            "float32_memory",
        )
    no_cuda = ctx.cuda is not None and not ctx.cuda.available
    float16_on_cpu = c.model.torch_dtype == "float16" and (
        c.model.device == "cpu" or (no_cuda and c.model.device != "cuda")
    )
    if c.model.torch_dtype in ("bfloat16", "float16") and not c.training.use_lora and not float16_on_cpu:
        yield _warning(
            "model.torch_dtype",
            f"A full fine-tune in {c.model.torch_dtype} updates half-precision weights directly: most of "
            "AdamW's small steps round away (6 steps at 2e-5 moved under a third of a layer's bfloat16 "
            "weights). auto keeps float32 weights and computes in bf16 where the worker can.",
            "half_precision_full_finetune",
        )
    if float16_on_cpu:
        yield _warning(
            "model.torch_dtype",
            "float16 training needs a GPU's mixed precision: without CUDA the run trains in float32, with "
            "twice float16's memory for weights and activations (the estimate counts float32). "
            + (
                "The config is pinned to the CPU."
                if c.model.device == "cpu"
                else f"No CUDA worker: {ctx.cuda.reason}"
            )
            + " On a CPU use auto (float32, with bf16 autocast where the CPU has bf16 instructions) "
            "or bfloat16.",
            "float16_on_cpu",
        )
    if c.model.device == "cuda" and no_cuda:
        yield _error(
            "model.device", f"No CUDA worker is available: {ctx.cuda.reason}", "cuda_device_unavailable"
        )


def tokenizer_rules(c: TrainingConfigSpec, ctx: LintContext, _memory):
    if c.tokenizer.max_length < 16:
        yield _error("tokenizer.max_length", "Max length must be at least 16 tokens.", "max_length_small")
    facts = ctx.model_facts
    if facts and facts.context_length and c.tokenizer.max_length > facts.context_length:
        yield _warning(
            "tokenizer.max_length",
            f"Longer than the model's context ({facts.context_length} tokens): "
            "positions past it were never trained.",
            "max_length_over_context",
        )
    named = (c.tokenizer.name or "").strip()
    if named and named != c.model.name.strip():
        yield _warning(
            "tokenizer.name",
            f"A run always uses the base model's own tokenizer, so {named!r} would be ignored: a model's "
            "token ids only mean something with its own vocabulary. Leave it empty.",
            "tokenizer_name_ignored",
        )
    if c.tokenizer.chat_template and (problem := chat_template_problem(c.tokenizer.chat_template)):
        line, message = problem
        yield _error(
            "tokenizer.chat_template",
            "The chat template does not compile"
            + (f" (line {line})" if line else "")
            + f": {message}. The trained model's GGUF carries it, and llama.cpp could not serve the model.",
            "chat_template_syntax",
        )
    elif c.tokenizer.chat_template and (difference := training_format_difference(c.tokenizer.chat_template)):
        yield _warning(
            "tokenizer.chat_template",
            "Rows are trained in Toolsmith's tool-call format; this template, which the GGUF carries for "
            f"serving, formats a tool conversation differently: {difference}. The served model would see "
            "prompts unlike the ones it learned. Leave it empty to use the training format.",
            "chat_template_differs",
        )


SMALLEST_LORA_SCALE = 0.1  # alpha / r below this: the adapter's update is scaled almost to nothing
POLYNOMIAL_LR_END = 1e-7  # transformers' `get_polynomial_decay_schedule_with_warmup` default, which it checks


def training_rules(c: TrainingConfigSpec, ctx: LintContext, memory: MemoryEstimate | None):
    t = c.training
    if t.batch_size < 1:
        yield _error("training.batch_size", "Batch size must be at least 1.", "batch_size_min")
    elif t.batch_size > LARGE_BATCH:
        yield _warning(
            "training.batch_size", f"A batch of {t.batch_size} rows may run out of memory.", "large_batch"
        )
    if memory is not None and ctx.machine_memory_bytes and memory.total_bytes > ctx.machine_memory_bytes:
        yield _warning(
            "training.batch_size",
            f"Needs about {memory.total_gib:.1f} GiB; "
            f"the worker has {ctx.machine_memory_bytes / 2**30:.1f} GiB. "
            "Lower the batch size or max length (use gradient accumulation to keep the effective batch).",
            "large_batch",
        )
    if not t.learning_rate > 0 or not math.isfinite(t.learning_rate):
        yield _error(
            "training.learning_rate", "Learning rate must be greater than 0.", "learning_rate_positive"
        )
    elif t.lr_scheduler_type == "polynomial" and t.learning_rate <= POLYNOMIAL_LR_END:
        yield _error(
            "training.learning_rate",
            f"The polynomial schedule decays to {POLYNOMIAL_LR_END:g}: the learning rate must start above it "
            "(or pick another schedule).",
            "polynomial_below_end",
        )
    elif t.learning_rate > HIGH_LEARNING_RATE:
        yield _warning(
            "training.learning_rate",
            f"Above {HIGH_LEARNING_RATE:g} training may be unstable (loss spikes, NaN); "
            "LoRA usually wants 1e-4 to 5e-4.",
            "high_learning_rate",
        )
    if t.max_steps is None and not t.num_epochs > 0:
        yield _error(
            "training.num_epochs", "Epochs must be greater than 0 (or set max steps).", "epochs_positive"
        )
    if t.max_steps is not None and t.max_steps < 1:
        yield _error(
            "training.max_steps", "Max steps must be at least 1 (empty = train by epochs).", "max_steps_min"
        )
    if t.gradient_accumulation_steps < 1:
        yield _error("training.gradient_accumulation_steps", "Must be at least 1.", "accumulation_min")
    if not 0 <= t.warmup_ratio < 1:
        yield _error(
            "training.warmup_ratio", "Warmup ratio must be from 0 up to (not including) 1.", "warmup_range"
        )
    if t.use_lora:
        if t.lora_r is None:
            yield _error("training.lora_r", "LoRA is on: its rank r is required.", "lora_r_required")
        elif t.lora_r < 1:
            yield _error("training.lora_r", "LoRA rank must be at least 1.", "lora_r_required")
        if t.lora_alpha < 1:
            yield _error("training.lora_alpha", "LoRA alpha must be at least 1.", "lora_alpha_min")
        elif t.lora_r and t.lora_r >= 1 and t.lora_alpha / t.lora_r < SMALLEST_LORA_SCALE:
            yield _warning(
                "training.lora_alpha",
                f"LoRA scales its update by alpha / r = {t.lora_alpha:g} / {t.lora_r} = "
                f"{t.lora_alpha / t.lora_r:.3g}: the adapter would barely move the model. Alpha is usually "
                "r to 2r.",
                "lora_scale_tiny",
            )
        hidden = ctx.model_facts.hidden if ctx.model_facts is not None else None
        if t.lora_r and hidden and t.lora_r > hidden:
            yield _warning(
                "training.lora_r",
                f"A LoRA rank of {t.lora_r} is above the model's hidden size ({hidden}): the adapters hold "
                "more parameters than the layers they adapt, and can learn nothing a full fine-tune could "
                "not. 8 to 64 is usual.",
                "lora_r_above_hidden",
            )
        if not 0 <= t.lora_dropout < 1:
            yield _error(
                "training.lora_dropout",
                "Dropout must be from 0 up to (not including) 1.",
                "lora_dropout_range",
            )
        if isinstance(t.lora_target_modules, list):
            yield from _lora_target_rules(t.lora_target_modules, ctx.model_facts)
    if t.use_qlora:
        if not t.use_lora:
            yield _error(
                "training.use_qlora",
                "QLoRA trains LoRA adapters on a 4-bit base: turn LoRA on.",
                "qlora_needs_lora",
            )
        if ctx.cuda is not None and not ctx.cuda.available:
            if ctx.submitting:
                yield _error(
                    "training.use_qlora", f"QLoRA needs a CUDA worker: {ctx.cuda.reason}", "qlora_needs_cuda"
                )
            else:
                yield _warning(
                    "training.use_qlora",
                    f"QLoRA needs a CUDA worker, checked when the run starts: {ctx.cuda.reason}",
                    "qlora_needs_cuda",
                )
    if t.method == "dpo" and not t.dpo_beta > 0:
        yield _error("training.dpo_beta", "DPO beta must be greater than 0.", "dpo_beta_positive")
    if t.early_stopping_patience is not None and t.early_stopping_patience < 1:
        yield _error(
            "training.early_stopping_patience",
            "Patience is a number of evaluations, at least 1 (empty = no early stopping).",
            "early_stopping_patience_min",
        )


OUTPUT_HEAD, INPUT_EMBEDDINGS = "lm_head", "embed_tokens"  # their names in Llama-style models


def _lora_target_rules(targets: list[str], facts: ModelFacts | None):
    """What peft and TRL 1.16 make of named modules, as tried on a tiny Llama with and without tied
    embeddings: an adapter on the head stops the run, one on the embeddings trains."""
    named = {target.strip().rsplit(".", 1)[-1] for target in targets if target.strip()}
    if not named:
        yield _error(
            "training.lora_target_modules", "Name at least one module, or use all-linear.", "lora_targets"
        )
        return
    if OUTPUT_HEAD in named:
        yield _error(
            "training.lora_target_modules",
            "TRL refuses a LoRA adapter on lm_head, so the run would stop before training: the loss is "
            "computed from the head's weights directly, and the adapter would never learn. Remove lm_head "
            "(all-linear leaves it out).",
            "lora_target_lm_head",
        )
    tied = facts.tied_embeddings if facts is not None else None
    if INPUT_EMBEDDINGS in named and tied is not False:
        yield _warning(
            "training.lora_target_modules",
            ("The base model ties" if tied else "If the base model ties (SmolLM2 does)")
            + " its output head to its input embeddings: an adapter on embed_tokens trains the inputs "
            "only, but merging it for export changes the head as well, which training never saw, so the "
            "exported model is not the one trained. Leave embed_tokens out.",
            "lora_embeddings_tied",
        )
    if not named & {*LLAMA_PROJECTIONS, OUTPUT_HEAD, INPUT_EMBEDDINGS}:
        yield _warning(
            "training.lora_target_modules",
            "None of these is a projection of a Llama-style model ("
            + ", ".join(LLAMA_PROJECTIONS)
            + "): unless the base model names its layers so, LoRA finds nothing to adapt and the run stops "
            "before training.",
            "lora_targets_unknown",
        )


def data_rules(c: TrainingConfigSpec, ctx: LintContext, _memory):
    d, t = c.data, c.training
    if d.max_samples is not None and d.max_samples < 1:
        yield _error(
            "data.max_samples", "Max samples must be at least 1 (empty = all rows).", "max_samples_min"
        )
    if not 0 < d.train_split < 1:
        yield _error(
            "data.train_split",
            "The train split is a share strictly between 0 and 1 (0.9 keeps 10% for evaluation).",
            "train_split_range",
        )
    dataset = ctx.datasets.get(d.dataset) if d.dataset else None
    if d.dataset and dataset is None:
        yield _error("data.dataset", f"You have no dataset named {d.dataset!r}.", "dataset_unknown")
    if not 0 <= d.eval_split < 1 or (0 < d.train_split < 1 and d.train_split + d.eval_split > 1 + 1e-9):
        yield _error(
            "data.eval_split",
            "The eval split is a share from 0 to 1, and train + eval cannot exceed 1.",
            "eval_split_range",
        )
    if c.evaluation.eval_set and c.evaluation.eval_set not in ctx.datasets:
        yield _error(
            "evaluation.eval_set", f"You have no dataset named {c.evaluation.eval_set!r}.", "dataset_unknown"
        )
    elif c.evaluation.eval_set and ctx.datasets[c.evaluation.eval_set].kind != "sft":
        yield _error(
            "evaluation.eval_set",
            "The evaluation asks each row's request and checks the call: pick a tool-calling (SFT) dataset.",
            "eval_set_not_sft",
        )
    if t.method == "dpo" and dataset is not None and dataset.kind != "dpo":
        yield _error(
            "data.dataset",
            "DPO trains on preference pairs (prompt, chosen, rejected): pick a preference dataset.",
            "dpo_needs_preference_dataset",
        )
    if t.method == "sft" and dataset is not None and dataset.kind == "dpo" and d.strategy == "as_is":
        yield _warning(
            "data.dataset",
            "A preference dataset in SFT: only the chosen answers are trained on.",
            "sft_on_preference",
        )
    if d.source_spec and ctx.spec_names is not None and d.source_spec not in ctx.spec_names:
        yield _warning(
            "data.source_spec",
            f"You have no spec named {d.source_spec!r}: the trained model's page will offer no NL → API "
            "chat on it. Import it on the Specs page, or leave this empty.",
            "source_spec_unknown",
        )
    if d.strategy == "teacher":
        if t.method == "dpo":
            yield _error(
                "data.strategy",
                "Teacher Mode writes SFT targets; use it with method sft.",
                "teacher_needs_sft",
            )
        if not d.teacher_model:
            yield _error(
                "data.teacher_model",
                "Teacher Mode needs a teacher model from the registry.",
                "teacher_required",
            )
        elif d.teacher_model not in ctx.registry_models:
            yield _error(
                "data.teacher_model",
                f"No model named {d.teacher_model!r} in your registry.",
                "teacher_unknown",
            )
    if dataset is not None and dataset.rows > 0:
        yield from _empty_split_rules(c, dataset)
        yield from _step_count_rules(c, dataset)
        yield from _length_rules(c, dataset, ctx)
        yield from _overlap_rules(c, dataset)
    if d.eval_split == 0 and (dataset is None or not dataset.eval_rows):
        nothing_held_out = "with an eval split of 0 " + (
            "this dataset holds no row out" if dataset else "no row is held out unless the dataset marks some"
        )
        if t.early_stopping_patience:
            yield _warning(
                "training.early_stopping_patience",
                f"Early stopping watches the eval loss, and {nothing_held_out}: it will be off. Set an eval "
                "split (0.1 holds out 10%).",
                "early_stopping_needs_eval",
            )
        scored = c.evaluation.enabled and answer_metrics(c.evaluation.metrics) and c.export.quantization_types
        if scored and not c.evaluation.eval_set:
            yield _warning(
                "data.eval_split",
                f"The evaluation answers held-out rows, and {nothing_held_out}: the run would report no "
                "accuracy. Set an eval split, or an evaluation set.",
                "evaluation_needs_eval",
            )


def _length_rules(c: TrainingConfigSpec, dataset: DatasetFacts, ctx: LintContext):
    tools_tokens = _config_tools_tokens(c) if dataset.length_bands_without_tools else 0
    over = dataset.rows_longer_than(c.tokenizer.max_length, tools_tokens)
    if not over:
        return
    every_row = dataset.every_row_longer_than(c.tokenizer.max_length, tools_tokens)
    # SFT trains only the answer, which comes last: every row cut, nothing left, and the trainer refuses.
    # DPO cuts prompt and answers as TRL decides and trains on what is left: a warning there.
    refused = every_row and c.training.method != "dpo"
    share = f"{100 * over / dataset.rows:.0f}%" if not every_row else "all"
    fits = dataset.length_fitting(0.95, tools_tokens)
    config_tools = (
        f", with the config's tools ({tools_tokens:,} tokens) in the rows that offer none of their own"
        if tools_tokens
        else ""
    )
    fewer_tools = "offer fewer tools" if tools_tokens else "generate the dataset with fewer tools per request"
    what_then = (
        # The trainer refuses such a run after loading the model: say so before anything is queued.
        "every answer is cut, and training would refuse to start. "
        if refused
        else "they are cut there, and a row whose answer is cut teaches nothing. "
    )
    message = (
        f"About {over} of the dataset's {dataset.rows} rows ({share}) are longer than "
        f"{c.tokenizer.max_length} tokens (as the training chat template renders them, tools and all"
        f"{config_tools}): {what_then}"
        + (
            f"A max length of {fits:,} fits 95% of them{_memory_at(c, ctx, fits)}; "
            if fits and fits > c.tokenizer.max_length
            else ""
        )
        + f"raise max length, or {fewer_tools}."
    )
    if refused:
        yield _error("tokenizer.max_length", message, "every_answer_cut")
    else:
        yield _warning("tokenizer.max_length", message, "rows_over_max_length")


def _memory_at(c: TrainingConfigSpec, ctx: LintContext, max_length: int) -> str:
    """What a max length of `max_length` asks of the worker's memory, and the batch size that fits when
    the config's does not (raising max length alone can ask for several times the machine)."""
    if ctx.model_facts is None or not ctx.machine_memory_bytes or c.training.batch_size < 1:
        return ""
    cuda = ctx.cuda is not None and ctx.cuda.available
    batch = c.training.batch_size
    fitting = fitting_batch(c, ctx.model_facts, ctx.machine_memory_bytes, max_length, cuda)
    if fitting == batch:
        return ""
    if fitting is None:
        needed = _needed_bytes(c, ctx.model_facts, max_length, 1, cuda)
        return (
            f" (about {needed / 2**30:.1f} GiB even at batch size 1, more than the worker's "
            f"{ctx.machine_memory_bytes / 2**30:.1f} GiB"
            + ("" if c.training.gradient_checkpointing else "; gradient checkpointing would lower it")
            + ")"
        )
    keep = math.ceil(batch * c.training.gradient_accumulation_steps / fitting)
    return (
        f" within the worker's memory at batch size {fitting} (gradient accumulation {keep} keeps the "
        "effective batch)"
    )


def fitting_batch(
    c: TrainingConfigSpec, facts: ModelFacts, memory_bytes: int, max_length: int, cuda: bool = False
) -> int | None:
    """The largest batch size, up to the config's, whose run at `max_length` fits in `memory_bytes`;
    None when not even a batch of 1 does."""
    return next(
        (
            batch
            for batch in range(max(1, c.training.batch_size), 0, -1)
            if _needed_bytes(c, facts, max_length, batch, cuda) <= memory_bytes
        ),
        None,
    )


def _needed_bytes(c: TrainingConfigSpec, facts: ModelFacts, max_length: int, batch: int, cuda: bool) -> int:
    config = c.model_copy(
        update={
            "tokenizer": c.tokenizer.model_copy(update={"max_length": max_length}),
            "training": c.training.model_copy(update={"batch_size": batch}),
        }
    )
    return estimate_memory(config, facts, cuda=cuda).total_bytes


def _config_tools_tokens(c: TrainingConfigSpec) -> int:
    """What the config's `tools` add to each row that offers none of its own, as training offers them
    (`jobs.training.data.with_config_tools`): measured once per set of tools, no row read again."""
    if not c.tools:
        return 0
    from app.datasets.stats import offered_tools_tokens  # the datasets package imports this module

    offered, _ = validate_tool_definitions(c.tools)
    return offered_tools_tokens(offered) if offered else 0


REPEATED_REQUESTS_SHARE = 0.5  # fewer distinct requests than this share of the rows: a thin hold-out


def _overlap_rules(c: TrainingConfigSpec, dataset: DatasetFacts):
    """Held-out rows that ask what training rows ask make the eval loss and accuracy look better than the
    model is: they measure recall, not generalisation. The trainer's own random hold-out keeps each
    request on one side, so with few distinct requests it holds out only a handful of them, whole."""
    if dataset.eval_rows and dataset.eval_requests_in_train:
        yield _warning(
            "data.dataset",
            f"{dataset.eval_requests_in_train} of the {dataset.eval_rows} held-out rows ask a request that "
            "a training row asks word for word: their eval loss and accuracy measure recall, not "
            "generalisation. Draw the split again on the dataset's page (it keeps each request on one side).",
            "eval_requests_in_train",
        )
    elif (
        not dataset.eval_rows
        and c.data.eval_split > 0
        and dataset.distinct_requests is not None
        and dataset.distinct_requests < REPEATED_REQUESTS_SHARE * dataset.rows
    ):
        held = max(1, round(dataset.distinct_requests * c.data.eval_split))
        yield _warning(
            "data.eval_split",
            f"Only {dataset.distinct_requests} distinct requests among {dataset.rows} rows: the "
            f"{c.data.eval_split:.0%} hold-out keeps each request's rows on one side, so about {held} "
            f"request{'s' if held != 1 else ''} will be held out whole, never trained on, and the eval loss "
            f"will rest on {'it' if held == 1 else 'them'} alone. Generate more varied requests, or draw the "
            "split on the dataset's page to see which ones are held out.",
            "repeated_requests",
        )


def _empty_split_rules(c: TrainingConfigSpec, dataset: DatasetFacts):
    """The split rounds (`jobs.training.data.split_rows`): a small share of a small dataset is no row."""
    if not 0 < c.data.train_split < 1 or dataset.split(c).train > 0:
        return
    marked_train = dataset.marked_train_rows or 0
    free = dataset.rows - dataset.eval_rows - marked_train  # rows the shares divide
    if free <= 0:
        yield _warning(
            "data.dataset",
            "Every row of the dataset is marked eval: the run will stop before training. Move rows to "
            "training or draw the split again on the dataset's page.",
            "empty_train_split",
        )
        return
    yield _warning(
        "data.train_split",
        f"A train split of {c.data.train_split:g} of {free} rows rounds to no training row: "
        + ("unless the dataset marks rows for training, " if dataset.marked_train_rows is None else "")
        + "the run will stop before training. Raise it.",
        "empty_train_split",
    )


def _step_count_rules(c: TrainingConfigSpec, dataset: DatasetFacts):
    t, d = c.training, c.data
    if t.batch_size < 1 or t.gradient_accumulation_steps < 1 or not 0 < d.train_split < 1:
        return  # already an error
    train_rows = dataset.split(c).train
    if train_rows < 1:
        return  # the empty split's warning says so
    steps_per_epoch = max(1, math.ceil(train_rows / (t.batch_size * t.gradient_accumulation_steps)))
    steps = planned_steps(c, train_rows)
    epochs = steps / steps_per_epoch
    interval = evaluation_interval(c)
    if t.early_stopping_patience and t.early_stopping_patience >= 1 and interval >= 1:
        evaluations = steps // interval
        if evaluations <= t.early_stopping_patience:
            yield _warning(
                "training.early_stopping_patience",
                f"{steps} steps evaluated every {interval} make {evaluations} evaluation"
                f"{'s' if evaluations != 1 else ''}: not enough for a patience of "
                f"{t.early_stopping_patience} to ever stop the run. "
                "Evaluate more often (logging.eval_steps) or lower the patience.",
                "early_stopping_never",
            )
    if c.logging.logging_steps > steps:
        yield _warning(
            "logging.logging_steps",
            f"Logging every {c.logging.logging_steps} steps in a run of {steps}: the run page would show no "
            "loss, speed or ETA until the end. Log more often.",
            "logging_never",
        )
    if steps < FEWEST_STEPS:
        yield _warning(
            "training.num_epochs" if not t.max_steps else "training.max_steps",
            f"Only {steps} optimizer steps for {train_rows} training rows: too few to learn much.",
            "too_few_steps",
        )
    elif epochs > MOST_EPOCHS:
        yield _warning(
            "training.max_steps" if t.max_steps else "training.num_epochs",
            f"{steps} steps is {epochs:.0f} passes over {train_rows} rows: the model will memorise them.",
            "too_many_steps",
        )


def tools_rules(c: TrainingConfigSpec, _ctx: LintContext, _memory):
    if not c.tools:
        return
    _, problems = validate_tool_definitions(c.tools)
    for problem in problems:
        yield _error("tools", problem, "tools_invalid")


HUB_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


def _hub_rules(c: TrainingConfigSpec, ctx: LintContext):
    e = c.export
    if e.hub_repo_id and not HUB_REPO_ID.fullmatch(e.hub_repo_id):
        yield _error(
            "export.hub_repo_id",
            "A Hub repository looks like owner/name (letters, digits, . _ -).",
            "hub_repo_id",
        )
    if not e.push_to_hub:
        return
    if not e.hub_repo_id:
        yield _error(
            "export.hub_repo_id", "Pushing to the Hub needs a repository (owner/name).", "hub_repo_missing"
        )
    if not e.quantization_types:
        yield _warning("export.push_to_hub", "Without a GGUF only the merged model is pushed.", "hub_no_gguf")
    if ctx.has_hub_token is False:
        yield _error(
            "export.push_to_hub",
            "Save a Hugging Face token (with write access) in your account settings first.",
            "hub_token_missing",
        )


def output_rules(c: TrainingConfigSpec, ctx: LintContext, _memory):
    if c.logging.logging_steps < 1:
        yield _error("logging.logging_steps", "Log at least every 1 step.", "logging_steps_min")
    if c.logging.eval_steps is not None and c.logging.eval_steps < 1:
        yield _error(
            "logging.eval_steps", "Evaluate at least every 1 step (empty = the default).", "eval_steps_min"
        )
    if not c.export.quantization_types:
        yield _warning(
            "export.quantization_types", "No quantization type: the run will not produce a GGUF.", "no_export"
        )
    yield from _hub_rules(c, ctx)
    if c.evaluation.enabled and c.evaluation.eval_set and c.evaluation.eval_set == c.data.dataset:
        yield _warning(
            "evaluation.eval_set", "Evaluating on the training dataset overstates accuracy.", "eval_on_train"
        )
    if c.evaluation.enabled and not c.evaluation.metrics:
        yield _warning(
            "evaluation.metrics",
            "The evaluation is on but measures nothing: pick a metric, or turn the evaluation off.",
            "no_metrics",
        )
    elif c.evaluation.enabled and answer_metrics(c.evaluation.metrics) and not c.export.quantization_types:
        yield _warning(
            "evaluation.metrics",
            "Tool-call accuracy, valid calls and exact match are measured on the exported GGUF: with no "
            "quantization type there is none, so only the eval loss is reported.",
            "metrics_need_export",
        )


RULES = (model_rules, tokenizer_rules, training_rules, data_rules, tools_rules, output_rules)
