"""Build and run a TRL trainer (SFT or DPO, LoRA / QLoRA / full) for a training config.

What this decides, and why:
- bf16 on GPUs that support it; on CPU float32 weights, with bf16 autocast where the CPU multiplies
  bf16 in hardware (AVX-512 BF16 / AMX; elsewhere it is emulated and slower than float32), measured
  in bench/training_throughput.py. QLoRA (bitsandbytes 4-bit) only with CUDA.
- gradient checkpointing off unless the config asks: for small models on CPU it cost ~20% of the
  throughput (ARCHITECTURE.md) and memory is rarely the limit there.
- the tokenizer gets the tool-aware template before training and keeps it (`TOOL_CHAT_TEMPLATE`,
  without the training markers), so it is saved with the adapter and carried into the GGUF.
- SFT scores the LM head only on the assistant tokens (`compact_loss`): on CPU TRL scores every
  position, ~40% of each step for tool-calling rows. DPO gets TRL's own head on its compact path.
- `TrainingHooks` is how the job sees progress and asks to stop: a TrainerCallback calls it on every
  log and checks `should_stop` at every step; stopping saves a checkpoint first, so resume works.
  `on_sample` gets the model's answer to a held-out request at each evaluation and at the end
  (`samples.py`).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from app.configs.schema import TrainingConfigSpec, evaluation_interval
from app.serving.chat_template import TOOL_CHAT_TEMPLATE
from app.training.files import ADAPTER_DIR, TRAINED_MARKER, mark_trained
from jobs.progress import JobFailed
from jobs.training.compact_loss import labelled_positions_only
from jobs.training.data import Splits, real_tokens, render_dpo, tokenize_sft
from jobs.training.hardware import cpu_has_native_bf16

log = logging.getLogger(__name__)


class TrainingRefused(JobFailed, RuntimeError):
    """The config cannot run on this worker (QLoRA without CUDA, ...): a message for the user, shown as
    it is (a `JobFailed`), not after the exception's module path."""


@dataclass
class StepReport:
    step: int
    total_steps: int
    epoch: float | None
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    tokens_per_second: float | None = None
    eta_seconds: float | None = None


@dataclass
class TrainingHooks:
    on_log: Callable[[StepReport], None] = lambda report: None
    should_stop: Callable[[], bool] = lambda: False
    on_sample: Callable[[int, str, str], None] | None = None  # (step, held-out request, model's answer)


@dataclass
class TrainOutcome:
    adapter_dir: Path
    stopped: bool
    global_step: int
    train_tokens: int  # real (non-padding) tokens trained on in this call
    seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)
    best: BestWeights | None = None  # with early stopping on: the evaluation whose weights were kept
    eval_rows: int = 0  # held-out rows the eval loss is computed on: those truncation left an answer


@dataclass
class BestWeights:
    step: int
    eval_loss: float
    stopped_early: bool  # the eval loss stopped improving before the planned last step


def device_settings(config: TrainingConfigSpec) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available() and config.model.device != "cpu"
    if config.model.device == "cuda" and not cuda:
        raise TrainingRefused("The config asks for a CUDA device and this worker has none.")
    if config.training.use_qlora and not cuda:
        raise TrainingRefused(
            "QLoRA needs a CUDA worker (bitsandbytes 4-bit); this worker has no CUDA device."
        )
    auto = config.model.torch_dtype == "auto"
    gpu_bf16 = cuda and torch.cuda.is_bf16_supported()
    dtype_name = config.model.torch_dtype
    if auto:
        # A full fine-tune keeps float32 weights, with bf16 autocast for the arithmetic: AdamW's small
        # updates to bf16 weights round away (6 steps at 2e-5 moved 31% of a layer's bf16 weights, and
        # all of its float32 ones). LoRA's adapters train in float32 either way.
        dtype_name = "bfloat16" if gpu_bf16 and config.training.use_lora else "float32"
    if not cuda and dtype_name == "float16":
        dtype_name = "float32"  # fp16 training needs a GPU's mixed precision
    autocast = (cuda and (dtype_name == "bfloat16" or (auto and gpu_bf16))) or (
        not cuda and auto and cpu_has_native_bf16()
    )
    return {
        "cuda": cuda,
        "dtype": getattr(torch, dtype_name),
        "dtype_name": dtype_name,
        "bf16_autocast": autocast,
    }


def load_model_and_tokenizer(base_dir: Path, config: TrainingConfigSpec, settings: dict[str, Any]):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trust = bool(config.model.trust_remote_code)  # the linter allows it for admins only
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir), trust_remote_code=trust)
    tokenizer.padding_side = config.tokenizer.padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.chat_template = config.tokenizer.chat_template or TOOL_CHAT_TEMPLATE
    kwargs: dict[str, Any] = {"dtype": settings["dtype"], "trust_remote_code": trust}
    if config.training.use_qlora:
        import torch
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if settings["dtype_name"] == "bfloat16" else torch.float16,
        )
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), **kwargs)
    if config.training.use_qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.training.gradient_checkpointing
        )
    return model, tokenizer


def eager_attention_note(model: Any, config: TrainingConfigSpec) -> str | None:
    """The memory estimate assumes fused attention (SDPA), whose memory grows with the length: measured
    flat per token up to 4,096 tokens (docs/benchmarks.md). A model that only computes attention
    eagerly keeps every layer's batch × heads × length² attention weights for the backward pass (with
    gradient checkpointing, about one layer's): say so, with what it adds, before it runs out of memory."""
    text = model.config.get_text_config()
    if getattr(text, "_attn_implementation", None) != "eager":
        return None
    heads = getattr(text, "num_attention_heads", 0) or 0
    layers = 1 if config.training.gradient_checkpointing else getattr(text, "num_hidden_layers", 0) or 0
    length, batch = config.tokenizer.max_length, config.training.batch_size
    batch *= 2 if config.training.method == "dpo" else 1  # chosen and rejected go through as one batch
    # The softmaxed weights autograd keeps, float32 (their transient scores come on top, briefly).
    extra = layers * batch * heads * length * length * 4
    return (
        f"This model computes attention eagerly (no fused kernel): it keeps batch × heads × length² "
        f"attention weights for the backward pass, at least {extra / 1024**3:.1f} GiB more for {batch} "
        f"rows of {length} tokens than the linter's memory estimate, which assumes fused attention"
    )


# Layer classes peft can put a LoRA adapter on, by name, besides the subclasses of torch's layers that
# `_adaptable` accepts (transformers' Conv1D, attention, bitsandbytes' 4- and 8-bit linears under QLoRA).
LORA_LAYER_TYPES = frozenset(
    {
        "Linear",
        "Linear4bit",
        "Linear8bitLt",
        "Embedding",
        "Conv1d",
        "Conv2d",
        "Conv3d",
        "Conv1D",
        "MultiheadAttention",
    }
)


def check_lora_targets(model: Any, config: TrainingConfigSpec) -> None:
    """peft stops with a bare "not found" when no target module exists, and with a dump of the module
    when one is no layer it can adapt (a norm, the rotary embedding, a list of layers), and TRL when one
    is the output head: name the culprits and the layers there are, before any step."""
    targets = config.training.lora_target_modules
    if not config.training.use_lora or not isinstance(targets, list):
        return  # all-linear always finds the linear layers
    import torch

    modules = [(name.rsplit(".", 1)[-1], module) for name, module in model.named_modules()]
    names = {name for name, _ in modules}
    linear = ", ".join(sorted({name for name, module in modules if isinstance(module, torch.nn.Linear)})[:12])
    if not any(target.rsplit(".", 1)[-1] in names for target in targets):
        raise TrainingRefused(
            f"None of training.lora_target_modules ({', '.join(targets)}) is a module of this model; its "
            f"linear layers are {linear or 'none'}. Name some of those, or use all-linear."
        )
    head = model.get_output_embeddings()
    head_names = {name for name, module in modules if module is head}
    on_head = sorted({target for target in targets if target.rsplit(".", 1)[-1] in head_names})
    if on_head:
        # TRL 1.16 stops with its own ValueError here (SFT and DPO alike), naming peft's `target_modules`.
        raise TrainingRefused(
            f"LoRA cannot train the output head ({', '.join(on_head)}): TRL computes the loss from the "
            "head's weights directly, so an adapter there would never learn. Remove it from "
            "training.lora_target_modules (all-linear leaves it out)."
        )
    unfit = sorted(
        {
            f"{target} ({type(module).__name__})"
            for target in targets
            for name, module in modules
            if name == target.rsplit(".", 1)[-1] and not _adaptable(module)
        }
    )
    if unfit:
        raise TrainingRefused(
            f"LoRA cannot adapt {', '.join(unfit)}: training.lora_target_modules must name linear, embedding "
            f"or convolution layers; this model's linear layers are {linear or 'none'}."
        )


def _adaptable(module: Any) -> bool:
    """Whether peft can put a LoRA adapter on `module`: torch's linear, embedding and convolution layers
    and their subclasses (bitsandbytes' 4-bit linear is one), or a quantised linear peft knows by name."""
    import torch

    layers = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    return isinstance(module, layers) or type(module).__name__ in LORA_LAYER_TYPES


def lora_config(config: TrainingConfigSpec):
    from peft import LoraConfig

    t = config.training
    if not t.use_lora:
        return None
    return LoraConfig(
        r=t.lora_r or 8,
        lora_alpha=t.lora_alpha,
        lora_dropout=t.lora_dropout,
        target_modules=t.lora_target_modules,
        task_type="CAUSAL_LM",
    )


def common_args(config: TrainingConfigSpec, output_dir: Path, settings: dict[str, Any], has_eval: bool):
    t = config.training
    return {
        "output_dir": str(output_dir),
        "num_train_epochs": t.num_epochs,
        "max_steps": t.max_steps or -1,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler_type,
        "warmup_steps": t.warmup_ratio,  # transformers 5: a float in [0, 1) is a share of the steps
        "per_device_train_batch_size": t.batch_size,
        "per_device_eval_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "activation_checkpointing": t.gradient_checkpointing,  # transformers 5 name
        "logging_steps": config.logging.logging_steps,
        "report_to": ["tensorboard"] if config.logging.tensorboard else [],
        "save_strategy": "steps",
        "save_steps": evaluation_interval(config),
        "save_total_limit": 2,  # with early stopping transformers keeps the best one besides
        "eval_strategy": "steps" if has_eval else "no",
        "eval_steps": evaluation_interval(config) if has_eval else None,
        **_early_stopping_args(config, has_eval),
        # A resumed run picks up early stopping's patience count where the checkpoint left it (off, a
        # resume started counting again and trained past where the whole run would have stopped).
        "restore_callback_states_from_checkpoint": True,
        "seed": config.seed,
        "bf16": settings["bf16_autocast"],
        "use_cpu": not settings["cuda"],
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
    }


def _early_stopping_args(config: TrainingConfigSpec, has_eval: bool) -> dict[str, Any]:
    if not (config.training.early_stopping_patience and has_eval):
        return {}
    return {"load_best_model_at_end": True, "metric_for_best_model": "eval_loss", "greater_is_better": False}


@dataclass(frozen=True)
class DpoPairs:
    tokens: int  # what one epoch reads: both sequences of each pair, each cut at max length
    longest: int  # the longest sequence before truncation
    identical: int  # pairs whose chosen and rejected answers are the same: no signal
    same_when_cut: int  # other pairs whose answers part only past the max length: no signal either


def dpo_pairs(rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> DpoPairs:
    """What truncation leaves of each rendered pair (prompt + chosen, prompt + rejected): TRL cuts
    both at max length, and a pair whose cut sequences are equal has a zero gradient (the loss stays
    ln 2), so a run of them finishes "done" having learned nothing."""
    tokens = longest = identical = same_when_cut = 0
    for row in rows:
        chosen, rejected = (tokenizer(row["prompt"] + row[side]).input_ids for side in ("chosen", "rejected"))
        tokens += min(len(chosen), max_length) + min(len(rejected), max_length)
        longest = max(longest, len(chosen), len(rejected))
        if row["chosen"] == row["rejected"]:
            identical += 1
        elif chosen[:max_length] == rejected[:max_length]:
            same_when_cut += 1
    return DpoPairs(tokens, longest, identical, same_when_cut)


def dpo_tokens(rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> int:
    """The tokens one epoch of DPO reads (tokens/s counts what the model actually processed)."""
    return dpo_pairs(rows, tokenizer, max_length).tokens


def refuse_pairs_without_signal(pairs: DpoPairs, count: int, max_length: int) -> None:
    """Refuse a DPO run none of whose pairs can teach anything; note in the run's log how many cannot."""
    silent = pairs.identical + pairs.same_when_cut
    if count and pairs.identical == count:
        raise TrainingRefused(
            "Every preference pair has the same chosen and rejected answer: DPO learns nothing from them."
        )
    if count and silent == count:
        raise TrainingRefused(
            f"No preference pair's answers differ within the max length ({max_length} tokens; the longest "
            f"pair has {pairs.longest}): raise tokenizer.max_length."
        )
    if silent:
        log.warning(
            "%d of %d preference pairs teach nothing: %d have the same chosen and rejected answer, %d differ "
            "only past the max length (%d tokens)",
            silent, count, pairs.identical, pairs.same_when_cut, max_length,
        )  # fmt: skip


def train(
    base_dir: Path,
    output_dir: Path,
    config: TrainingConfigSpec,
    splits: Splits,
    hooks: TrainingHooks,
    resume_from: str | None = None,
) -> TrainOutcome:
    from datasets import Dataset

    settings = device_settings(config)
    model, tokenizer = load_model_and_tokenizer(base_dir, config, settings)
    check_lora_targets(model, config)
    if (note := eager_attention_note(model, config)) is not None:
        log.warning("%s", note)
    held_out = len(splits.eval)  # rows the eval loss is computed on (SFT drops those with no answer left)
    started = time.perf_counter()
    if config.training.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        train_rows, eval_rows = render_dpo(splits.train, tokenizer), render_dpo(splits.eval, tokenizer)
        pairs = dpo_pairs(train_rows, tokenizer, config.tokenizer.max_length)
        refuse_pairs_without_signal(pairs, len(train_rows), config.tokenizer.max_length)
        tokens = pairs.tokens
        args = DPOConfig(
            **common_args(config, output_dir, settings, bool(held_out)),
            beta=config.training.dpo_beta,
            max_length=config.tokenizer.max_length,
        )
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
            processing_class=tokenizer,
            peft_config=lora_config(config),
        )
    else:
        from trl import SFTConfig

        from jobs.training.compact_loss import compact_sft_trainer_class

        max_length = config.tokenizer.max_length
        train_examples, lengths = tokenize_sft(splits.train, tokenizer, max_length)
        eval_examples, _ = tokenize_sft(splits.eval, tokenizer, max_length)
        if not train_examples:
            raise TrainingRefused(
                f"No training row has an assistant answer within the max length ({max_length} tokens; "
                f"the longest row has {lengths.longest}): raise tokenizer.max_length."
            )
        if not lengths.whole:
            raise TrainingRefused(
                f"Every training row's answer is cut off at the max length ({max_length} tokens; the "
                f"longest row has {lengths.longest}): the model would learn calls that never end. Raise "
                "tokenizer.max_length."
            )
        if len(train_examples) < len(splits.train):
            log.warning(
                "%d of %d training rows have no answer within the max length (%d tokens; the longest row "
                "has %d): they are left out of training. Raise tokenizer.max_length to keep them",
                len(splits.train) - len(train_examples), len(splits.train), max_length, lengths.longest,
            )  # fmt: skip
        if lengths.cut:
            log.warning(
                "%d of %d training rows have their answer cut off at the max length (%d tokens; the longest "
                "row has %d): their ends are not trained",
                lengths.cut, len(train_examples), max_length, lengths.longest,
            )  # fmt: skip
        held_out = len(eval_examples)
        if held_out < len(splits.eval):
            log.warning(
                "%d of %d held-out rows have no answer within the max length (%d tokens): %s",
                len(splits.eval) - held_out, len(splits.eval), max_length,
                "the eval loss leaves them out" if held_out else
                "with none left there is no eval loss. Raise tokenizer.max_length",
            )  # fmt: skip
        tokens = real_tokens(train_examples)
        args = SFTConfig(
            **common_args(config, output_dir, settings, bool(held_out)),
            max_length=config.tokenizer.max_length,
            packing=config.training.packing,
            # Batches of similar length waste fewer padding tokens (bench/training_throughput.py).
            train_sampling_strategy="random" if config.training.packing else "group_by_length",
        )
        trainer = compact_sft_trainer_class()(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(train_examples),
            eval_dataset=Dataset.from_list(eval_examples) if eval_examples else None,
            processing_class=tokenizer,
            peft_config=lora_config(config),
        )
    callback = _ProgressCallback(hooks, tokens_per_epoch=tokens)
    trainer.add_callback(callback)
    early_stopping = None
    if trainer.args.load_best_model_at_end:
        from transformers import EarlyStoppingCallback

        early_stopping = EarlyStoppingCallback(config.training.early_stopping_patience)
        trainer.add_callback(early_stopping)
    if hooks.on_sample and splits.eval:
        from jobs.training.samples import SampleCallback

        trainer.add_callback(
            SampleCallback(hooks.on_sample, tokenizer, splits.eval, lambda: callback.stopped)
        )
    adapter_dir = output_dir / ADAPTER_DIR
    # From here until the new adapter is saved whole, the run is not "trained" (a resume that dies
    # must not leave the export an older or half-written adapter).
    (adapter_dir / TRAINED_MARKER).unlink(missing_ok=True)
    with labelled_positions_only():
        result = trainer.train(resume_from_checkpoint=resume_from)
    # A cancel's checkpoint was written by the trainer itself (`should_save` in `on_step_end`), with
    # that step's weights; saving the model over it would put early stopping's best weights there.
    partial = output_dir / f".{ADAPTER_DIR}-partial"
    shutil.rmtree(partial, ignore_errors=True)
    trainer.save_model(str(partial))
    tokenizer.chat_template = config.tokenizer.chat_template or TOOL_CHAT_TEMPLATE
    tokenizer.save_pretrained(str(partial))
    shutil.rmtree(adapter_dir, ignore_errors=True)
    partial.rename(adapter_dir)
    if not callback.stopped:
        mark_trained(adapter_dir, trainer.state.global_step)
    return TrainOutcome(
        adapter_dir=adapter_dir,
        stopped=callback.stopped,
        global_step=trainer.state.global_step,
        train_tokens=round(tokens * max((trainer.state.epoch or 0.0) - callback.start_epoch, 0.0)),
        seconds=time.perf_counter() - started,
        metrics=dict(result.metrics),
        best=_best_weights(trainer.state, _current(trainer, early_stopping)),
        eval_rows=held_out,
    )


def _current(trainer, callback):
    """The trainer's instance of `callback`'s class: restoring callback states from a checkpoint puts a
    new one in its place, holding the restored counts."""
    if callback is None:
        return None
    return next((c for c in trainer.callback_handler.callbacks if type(c) is type(callback)), callback)


def _best_weights(state, early_stopping) -> BestWeights | None:
    if early_stopping is None or state.best_metric is None:
        return None
    patience = early_stopping.early_stopping_patience
    return BestWeights(
        step=state.best_global_step or 0,
        eval_loss=float(state.best_metric),
        stopped_early=early_stopping.early_stopping_patience_counter >= patience,
    )


class _ProgressCallback(TrainerCallback):
    """Reports each log to the hooks and stops (after saving a checkpoint) when asked to."""

    def __init__(self, hooks: TrainingHooks, tokens_per_epoch: int):
        self.hooks = hooks
        self.tokens_per_epoch = tokens_per_epoch
        self.stopped = False
        self.started: float | None = None
        self.start_step = 0
        self.start_epoch = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()
        self.start_step = state.global_step  # a resumed run starts at its checkpoint
        self.start_epoch = state.epoch or 0.0

    def on_step_end(self, args, state, control, **kwargs):
        if self.hooks.should_stop():
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        elapsed = time.perf_counter() - (self.started or time.perf_counter())
        done = state.global_step - self.start_step
        per_step = elapsed / done if done else None
        remaining = max(state.max_steps - state.global_step, 0)
        epochs_done = (state.epoch or 0.0) - self.start_epoch  # a resumed run counts from its checkpoint
        tokens_per_second = (
            self.tokens_per_epoch * epochs_done / elapsed if elapsed > 0 and epochs_done > 0 else None
        )
        self.hooks.on_log(
            StepReport(
                step=state.global_step,
                total_steps=state.max_steps,
                epoch=state.epoch,
                loss=_number(logs.get("loss")),
                eval_loss=_number(logs.get("eval_loss")),
                learning_rate=_number(logs.get("learning_rate")),
                grad_norm=_number(logs.get("grad_norm")),
                tokens_per_second=tokens_per_second,
                eta_seconds=per_step * remaining if per_step else None,
            )
        )


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
