"""Supervised fine-tuning of a causal LM on prompt-answer pairs.

``run_causal_lm_training`` is the whole life of one run. It reads and validates
the data, encodes each row with the model's chat template and splits the rows.
It then trains with the Hugging Face Trainer (LoRA through PEFT, or every
weight), saves the model and the validation split, and records the final
metrics and status in the run store. A run that fails or is cancelled is
marked so, and it never stays "running".

Each example is the chat template rendered once over two messages: the user
message (context and prompt, see ``halluscope.inference.build_messages``) and
the assistant message (the answer). Generation renders its prompt with the
same function, so a fine-tuned model gets the format it was trained on. The
loss covers only the answer tokens and the end-of-turn token that follows
them, so the model learns to answer and to stop, not to repeat the prompt.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from sklearn.model_selection import train_test_split
from transformers import (
    AutoTokenizer,
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.pytorch_utils import Conv1D

from halluscope.data import (
    DataValidationError,
    GenerationData,
    GenerationSchema,
    format_rows,
    prepare_generation,
    read_table,
)
from halluscope.inference.prompting import (
    build_messages,
    encode_prompt,
    has_chat_template,
    render_prompt,
)
from halluscope.models import (
    ModelNotFoundError,
    load_causal_lm,
    load_tokenizer,
    pick_device,
    resolve_model,
)
from halluscope.models.loading import AttentionKind
from halluscope.runs import RunStore, write_json_atomic
from halluscope.training.causal_config import CausalLMTrainConfig
from halluscope.training.classifier import CHECKPOINT_FOLDER, MODEL_FOLDER, file_sha256
from halluscope.training.events import ProgressEventsCallback, StopSignal
from halluscope.training.lifecycle import epoch_training_arguments, run_with_status

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
"""Label value that the cross-entropy loss skips (prompt and padding positions)."""

ADAPTER_FOLDER = "adapter"
"""Run subfolder with the LoRA adapter when ``merge`` saved full weights to ``model/``."""

BASE_MODEL_FILE = "base_model.json"
"""File in ``model/`` that records the base model reference and the method."""

GENERATION_SPLIT_FILE = "generation_split.json"
"""File in the run folder with the validation examples and the train row numbers."""


# Prompt format and encoding


def _render_completion(
    tokenizer: PreTrainedTokenizerBase,
    prompt_text: str,
    prompt: str,
    context: str | None,
    answer: str,
) -> str:
    """Return the text after the prompt: the answer and its end-of-turn token."""
    if not has_chat_template(tokenizer):
        return " " + answer + (tokenizer.eos_token or "")

    messages = [*build_messages(prompt, context), {"role": "assistant", "content": answer}]
    full_text = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full_text.startswith(prompt_text):
        raise ValueError(
            "The tokenizer's chat template renders the conversation with a different start "
            "than the prompt alone, so the answer tokens cannot be located. Use a model whose "
            "chat template appends the assistant turn after the generation prompt."
        )
    # Whitespace after the end-of-turn token (ChatML adds a newline) is never
    # generated, because generation stops at that token.
    return full_text[len(prompt_text) :].rstrip()


@dataclass(frozen=True)
class EncodedExample:
    """One tokenized training example.

    Attributes:
        input_ids: Token ids of prompt and completion, ``len <= max_length``.
        labels: ``IGNORE_INDEX`` on every prompt token, else the token id.
        prompt_length: Number of prompt tokens (the masked prefix of ``labels``).
        context_truncated: Whether tokens were cut from the start of the context.
    """

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    prompt_length: int
    context_truncated: bool

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.labels):
            raise ValueError(
                f"input_ids has {len(self.input_ids)} tokens but labels has {len(self.labels)}."
            )
        if not 0 < self.prompt_length < len(self.input_ids):
            raise ValueError(
                f"prompt_length {self.prompt_length} must leave at least one completion token "
                f"in {len(self.input_ids)} tokens."
            )


def _completion_ids(tokenizer: PreTrainedTokenizerBase, completion_text: str) -> list[int]:
    ids = tokenizer(completion_text, add_special_tokens=False)["input_ids"]
    special = set(tokenizer.all_special_ids)
    if (not ids or ids[-1] not in special) and tokenizer.eos_token_id is not None:
        # A template with no end-of-turn marker: the EOS token teaches the model to stop.
        ids = [*ids, tokenizer.eos_token_id]
    return ids


def _context_suffixes(tokenizer: PreTrainedTokenizerBase, context: str) -> tuple[int, Any]:
    """Return the context's token count and a function that keeps its last tokens."""
    if tokenizer.is_fast:
        encoding = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoding["offset_mapping"]

        def suffix(cut: int) -> str:
            return context[offsets[cut][0] :] if cut < len(offsets) else ""

        return len(offsets), suffix

    ids = tokenizer(context, add_special_tokens=False)["input_ids"]

    def decoded_suffix(cut: int) -> str:
        return tokenizer.decode(ids[cut:]) if cut < len(ids) else ""

    return len(ids), decoded_suffix


def encode_example(
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    answer: str,
    context: str | None,
    max_length: int,
) -> EncodedExample | None:
    """Tokenize one prompt-answer pair, masking the prompt in the labels.

    When the example is longer than ``max_length`` tokens, tokens are cut from
    the start of the context until it fits, because the end of a context is
    usually closer to the question. The prompt and the answer are never cut.

    Args:
        tokenizer: The model's tokenizer, with its chat template if it has one.
        prompt: The question or instruction.
        answer: The target answer (leading and trailing whitespace is dropped).
        context: Grounding text placed before the prompt, or None.
        max_length: Maximum tokens of the whole example.

    Returns:
        The example, or None when it cannot fit even with the whole context cut.
    """
    answer = answer.strip()
    context = context or None
    prompt_text = render_prompt(tokenizer, prompt, context)
    completion = _completion_ids(
        tokenizer, _render_completion(tokenizer, prompt_text, prompt, context, answer)
    )
    prompt_ids = encode_prompt(tokenizer, prompt_text)
    truncated = False

    overflow = len(prompt_ids) + len(completion) - max_length
    if overflow > 0:
        if not context:
            return None
        token_count, suffix = _context_suffixes(tokenizer, context)
        cut = overflow
        while overflow > 0:
            if cut > token_count:
                return None
            prompt_ids = encode_prompt(
                tokenizer, render_prompt(tokenizer, prompt, suffix(cut) or None)
            )
            overflow = len(prompt_ids) + len(completion) - max_length
            # Re-tokenizing the joined text can merge tokens differently, so the
            # cut grows by what still overflows rather than being computed once.
            cut += max(overflow, 1)
        truncated = True

    input_ids = tuple(prompt_ids) + tuple(completion)
    labels = (IGNORE_INDEX,) * len(prompt_ids) + tuple(completion)
    return EncodedExample(input_ids, labels, len(prompt_ids), truncated)


@dataclass(frozen=True)
class CompletionCollator:
    """Pads a list of examples on the right into one batch of tensors.

    ``input_ids`` are padded with ``pad_token_id``, ``attention_mask`` with 0
    and ``labels`` with ``IGNORE_INDEX``. Each output has shape
    ``(batch, longest)``, where ``longest`` is rounded up to a multiple of
    ``pad_to_multiple_of`` when that is set.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, torch.Tensor]:
        """Pad ``features`` (each with ``input_ids`` and ``labels``) into a batch."""
        longest = max(len(feature["input_ids"]) for feature in features)
        if self.pad_to_multiple_of:
            longest = math.ceil(longest / self.pad_to_multiple_of) * self.pad_to_multiple_of

        input_ids = torch.full((len(features), longest), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(features), longest), dtype=torch.long)
        labels = torch.full((len(features), longest), IGNORE_INDEX, dtype=torch.long)
        for row, feature in enumerate(features):
            length = len(feature["input_ids"])
            if len(feature["labels"]) != length:
                raise ValueError(
                    f"Example {row} of the batch has {length} input ids but "
                    f"{len(feature['labels'])} labels."
                )
            input_ids[row, :length] = torch.as_tensor(feature["input_ids"], dtype=torch.long)
            attention_mask[row, :length] = 1
            labels[row, :length] = torch.as_tensor(feature["labels"], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


class _CompletionDataset(torch.utils.data.Dataset):
    """Encoded examples as the lists that ``CompletionCollator`` pads."""

    def __init__(self, examples: Sequence[EncodedExample]):
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        example = self.examples[index]
        return {"input_ids": list(example.input_ids), "labels": list(example.labels)}


# Loss


def _accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    base = getattr(model, "module", model)  # a DistributedDataParallel wrapper
    if isinstance(base, PeftModel):
        base = base.get_base_model()
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def completion_token_nll(
    model: torch.nn.Module, batch: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the summed negative log-likelihood of the answer tokens and their count.

    The logits at position t predict token t + 1, so only positions whose next
    label is not ``IGNORE_INDEX`` are projected onto the vocabulary. On models
    whose forward accepts ``logits_to_keep`` this skips the LM head on prompt
    and padding positions, which on short answers is most of its cost.

    Args:
        model: A causal LM (or a PEFT model around one).
        batch: ``input_ids``, ``attention_mask`` and ``labels``, each ``(batch, seq)``.

    Returns:
        ``(nll_sum, token_count)``: a float32 scalar in nats and an int64 scalar.
    """
    logits, kept_targets, _ = _answer_logits(model, batch)
    nll_sum = F.cross_entropy(logits.float(), kept_targets, reduction="sum")
    return nll_sum, torch.as_tensor(kept_targets.numel(), device=nll_sum.device)


def _answer_logits(
    model: torch.nn.Module, batch: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the model and keep the logits of the positions that predict an answer token.

    Returns:
        ``(logits, targets, predicts_answer)``: logits ``(tokens, vocab)``, the
        answer token ids they predict ``(tokens,)``, and the boolean
        ``(batch, seq)`` mask of those positions, in the same row-major order.
    """
    labels = batch["labels"]
    targets = labels[:, 1:]
    predicts_answer = torch.zeros_like(labels, dtype=torch.bool)
    predicts_answer[:, :-1] = targets != IGNORE_INDEX
    kept_targets = targets[predicts_answer[:, :-1]]

    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if _accepts_logits_to_keep(model):
        # A boolean (batch, seq) mask keeps those positions, flattened to (tokens, vocab).
        logits = model(**inputs, use_cache=False, logits_to_keep=predicts_answer).logits
    else:
        logits = model(**inputs, use_cache=False).logits[predicts_answer]
    return logits, kept_targets, predicts_answer


def completion_nll_per_example(
    model: torch.nn.Module, batch: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return each example's summed answer-token NLL, answer-token count and exact match.

    The same positions as ``completion_token_nll`` are scored, so the sums over
    the batch equal its ``(nll_sum, token_count)``.

    Args:
        model: A causal LM (or a PEFT model around one).
        batch: ``input_ids``, ``attention_mask`` and ``labels``, each ``(batch, seq)``.

    Returns:
        ``(nll_sum, token_count, exact_match)``, each ``(batch,)``: float32 sums
        in nats, int64 counts, and whether every answer token of the example is
        the argmax of its logits (teacher-forced exact match). An example
        without answer tokens has a sum and count of 0 and counts as matched.
    """
    logits, kept_targets, predicts_answer = _answer_logits(model, batch)
    logits = logits.float()
    example_of_token = predicts_answer.nonzero()[:, 0]
    batch_size = predicts_answer.shape[0]

    token_nll = F.cross_entropy(logits, kept_targets, reduction="none")
    wrong = (logits.argmax(dim=-1) != kept_targets).long()
    nll_sum = torch.zeros(batch_size, dtype=torch.float32, device=token_nll.device)
    nll_sum.index_add_(0, example_of_token, token_nll)
    token_count = predicts_answer.sum(dim=1).to(torch.long)
    wrong_count = torch.zeros(batch_size, dtype=torch.long, device=token_nll.device)
    wrong_count.index_add_(0, example_of_token, wrong)
    return nll_sum, token_count, wrong_count == 0


def perplexity(mean_nll: float) -> float:
    """Return ``exp(mean_nll)``, or infinity when that overflows a float."""
    return math.exp(mean_nll) if mean_nll < 700 else float("inf")


class _CompletionTrainer(Trainer):
    """A Trainer whose loss and evaluation count answer tokens only.

    ``eval_loss`` is the mean negative log-likelihood per answer token over the
    whole validation split (the stock Trainer averages per-batch means instead),
    and ``eval_perplexity`` is its exponential. Each evaluation also reports
    ``epoch_train_loss``: the mean training loss per answer token since the
    previous evaluation, measured with dropout on.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._train_nll = 0.0
        self._train_tokens = 0

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        nll_sum, token_count = completion_token_nll(model, inputs)
        if model.training:
            self._train_nll += float(nll_sum.detach())
            self._train_tokens += int(token_count)

        if num_items_in_batch is not None:
            # Normalised over the answer tokens of all accumulated batches, so the
            # Trainer does not divide again by the accumulation steps.
            loss = nll_sum / num_items_in_batch
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                loss = loss * self.args.world_size
        else:
            loss = nll_sum / token_count.clamp(min=1)
        return (loss, {}) if return_outputs else loss

    def evaluate(
        self,
        eval_dataset: torch.utils.data.Dataset | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        # NOTE: every process evaluates the whole split. Under multi-GPU training
        # this repeats the work on each device, but the numbers are the same.
        started = time.monotonic()
        dataloader = self.get_eval_dataloader(eval_dataset)
        model = self.model
        was_training = model.training
        model.eval()
        nll_total, token_total = 0.0, 0
        use_bf16 = self.args.bf16 and self.args.device.type == "cuda"
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
            for batch in dataloader:
                nll_sum, token_count = completion_token_nll(model, self._prepare_inputs(batch))
                nll_total += float(nll_sum)
                token_total += int(token_count)
        model.train(was_training)

        mean_nll = nll_total / max(token_total, 1)
        metrics = {
            f"{metric_key_prefix}_loss": mean_nll,
            f"{metric_key_prefix}_perplexity": perplexity(mean_nll),
            f"{metric_key_prefix}_tokens": token_total,
            f"{metric_key_prefix}_runtime": round(time.monotonic() - started, 3),
        }
        if self._train_tokens:
            metrics["epoch_train_loss"] = self._train_nll / self._train_tokens
            self._train_nll, self._train_tokens = 0.0, 0
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        return metrics


class _SkipEvaluationAfterCancel(TrainerCallback):
    """Skips the end-of-epoch evaluation and checkpoint of a cancelled run."""

    def __init__(self, progress: ProgressEventsCallback):
        self.progress = progress

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.progress.cancelled:
            control.should_evaluate = False
            control.should_save = False
        return control


# Data


@dataclass(frozen=True)
class GenerationSplit:
    """The validation examples of a fine-tuning run.

    ``row_numbers`` are 1-based data rows of the source file (the first row
    after the header is row 1). ``contexts`` are the full, untruncated texts.
    """

    prompts: tuple[str, ...]
    answers: tuple[str, ...]
    contexts: tuple[str, ...] | None
    row_numbers: tuple[int, ...]

    def __post_init__(self) -> None:
        count = len(self.prompts)
        lengths = [len(self.answers), len(self.row_numbers)]
        if self.contexts is not None:
            lengths.append(len(self.contexts))
        if any(length != count for length in lengths):
            raise ValueError("prompts, answers, contexts and row_numbers must have equal lengths.")

    def __len__(self) -> int:
        return len(self.prompts)


def load_generation_data(config: CausalLMTrainConfig) -> GenerationData:
    """Read and validate the training file named in ``config``."""
    table = read_table(Path(config.data_path))
    schema = GenerationSchema(
        prompt=config.prompt_column, answer=config.answer_column, context=config.context_column
    )
    return prepare_generation(table, schema)


def _save_generation_split(
    path: Path,
    data: GenerationData,
    train_rows: Sequence[int],
    validation_rows: Sequence[int],
    dropped_rows: Sequence[int],
    truncated_rows: Sequence[int],
) -> None:
    """Write the split to ``path``. The ``*_rows`` arguments are indices into ``data``."""
    validation = [int(i) for i in validation_rows]
    payload = {
        "train_row_numbers": [int(data.row_numbers[i]) for i in train_rows],
        "dropped_row_numbers": [int(data.row_numbers[i]) for i in dropped_rows],
        "truncated_row_numbers": [int(data.row_numbers[i]) for i in truncated_rows],
        "validation": {
            "prompts": [data.prompts[i] for i in validation],
            "answers": [data.answers[i] for i in validation],
            "contexts": (
                [data.contexts[i] for i in validation] if data.contexts is not None else None
            ),
            "row_numbers": [int(data.row_numbers[i]) for i in validation],
        },
    }
    write_json_atomic(path, payload)


def load_generation_split(run_dir: Path | str) -> GenerationSplit:
    """Return the validation examples saved in a fine-tuning run's folder."""
    path = Path(run_dir) / GENERATION_SPLIT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"The run folder {run_dir} has no {GENERATION_SPLIT_FILE}, so the run probably "
            "failed before its data was split. Start a new run."
        )
    validation = json.loads(path.read_text(encoding="utf-8"))["validation"]
    contexts = validation.get("contexts")
    return GenerationSplit(
        prompts=tuple(validation["prompts"]),
        answers=tuple(validation["answers"]),
        contexts=tuple(contexts) if contexts is not None else None,
        row_numbers=tuple(validation["row_numbers"]),
    )


def _encode_rows(
    store: RunStore,
    run_id: str,
    data: GenerationData,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
) -> tuple[dict[int, EncodedExample], list[int], list[int]]:
    """Encode every row, and return the examples by row index and the dropped and truncated rows."""
    examples: dict[int, EncodedExample] = {}
    blank, too_long, truncated = [], [], []
    for index, prompt in enumerate(data.prompts):
        answer = data.answers[index]
        context = data.contexts[index] if data.contexts is not None else None
        if not answer.strip():
            blank.append(index)
            continue
        example = encode_example(tokenizer, prompt, answer, context, max_length)
        if example is None:
            too_long.append(index)
            continue
        examples[index] = example
        if example.context_truncated:
            truncated.append(index)

    def rows(indices: list[int]) -> str:
        return format_rows(data.row_numbers[i] for i in indices)

    notes = []
    if blank:
        notes.append(f"Skipped {rows(blank)}: the answer is empty, so there is nothing to learn.")
    if too_long:
        notes.append(
            f"Skipped {rows(too_long)}: the prompt and answer alone are longer than "
            f"max_length={max_length} tokens. Raise max_length to keep them."
        )
    if truncated:
        notes.append(
            f"Cut the start of the context in {rows(truncated)} to fit max_length={max_length} "
            "tokens. The answers are kept whole."
        )
    for note in notes:
        logger.warning("Run %s: %s", run_id, note)
        store.append_event(run_id, {"type": "warning", "message": note})
    return examples, sorted(blank + too_long), truncated


def _split_rows(
    data: GenerationData, kept: list[int], config: CausalLMTrainConfig
) -> tuple[list[int], list[int]]:
    if len(kept) < 2:
        raise DataValidationError(
            f"only {len(kept)} row(s) have a non-empty answer and fit max_length="
            f"{config.max_length} tokens, but fine-tuning needs at least 2 (one for validation).",
            file_name=data.file_name,
            column=config.answer_column,
            fix="Fill the answer column, or raise max_length.",
        )
    train_rows, validation_rows = train_test_split(
        np.asarray(kept), test_size=config.validation_fraction, random_state=config.seed
    )
    return [int(i) for i in train_rows], [int(i) for i in validation_rows]


# Model


def _linear_layer_names(model: torch.nn.Module) -> set[str]:
    return {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, (torch.nn.Linear, Conv1D))
    }


def _prepare_model(model: PreTrainedModel, config: CausalLMTrainConfig) -> torch.nn.Module:
    """Wrap ``model`` in LoRA adapters, or leave every weight trainable for ``full``."""
    if config.method == "full":
        return model

    available = _linear_layer_names(model)
    missing = [name for name in config.lora_target_modules if name not in available]
    if missing:
        raise ValueError(
            f"Invalid lora_target_modules: {', '.join(missing)} not found in {config.model}. "
            f"Its linear layers are: {', '.join(sorted(available))}."
        )
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules),
        bias="none",
    )
    return get_peft_model(model, lora)


def save_run_model(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    run_dir: Path,
    config: CausalLMTrainConfig,
    base_path: str,
) -> Path:
    """Save the trained model to ``run_dir/model`` and return that folder.

    LoRA without merge saves the adapter (safetensors) and the tokenizer. LoRA
    with merge saves the adapter to ``run_dir/adapter`` and the merged full
    weights to ``model/``. Full fine-tuning saves the full weights. Each case
    writes ``base_model.json`` next to the weights.
    """
    model_dir = run_dir / MODEL_FOLDER
    if model_dir.exists():
        shutil.rmtree(model_dir)
    record = {
        "base_model": config.model,
        "base_model_path": base_path,
        "allow_hub": config.allow_hub,
        "method": config.method,
        "merged": config.merge,
        "lora": (
            {
                "rank": config.lora_rank,
                "alpha": config.lora_alpha,
                "dropout": config.lora_dropout,
                "target_modules": list(config.lora_target_modules),
            }
            if config.method == "lora"
            else None
        ),
    }

    if isinstance(model, PeftModel):
        model.config.use_cache = True
        if config.merge:
            model.save_pretrained(run_dir / ADAPTER_FOLDER, safe_serialization=True)
            model = model.merge_and_unload()
        else:
            model.save_pretrained(model_dir, safe_serialization=True)
    if not isinstance(model, PeftModel):
        model.config.use_cache = True
        model.save_pretrained(model_dir, safe_serialization=True)

    tokenizer.save_pretrained(model_dir)
    write_json_atomic(model_dir / BASE_MODEL_FILE, record)
    return model_dir


def load_run_causal_lm(
    run_dir: Path | str,
    *,
    attention: AttentionKind = "eager",
    device: torch.device | None = None,
    merge_adapter: bool = False,
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """Load the fine-tuned model and tokenizer of a run for inference.

    A LoRA run without merge loads its base model (from the reference in
    ``base_model.json``, else from the path recorded there) and applies the
    adapter. Full and merged runs load ``model/`` as a plain model folder.

    Args:
        run_dir: The run's folder (the one that contains ``model/``).
        attention: ``"eager"`` (returns attention weights) or ``"sdpa"``.
        device: Where to put the model; CUDA when available, else the CPU.
        merge_adapter: Merge the LoRA weights into the base model in memory
            and return a plain ``PreTrainedModel``. Logits then match the
            adapter model up to float rounding.

    Returns:
        ``(model, tokenizer)``; the model is in eval mode, and is a ``PeftModel``
        for an unmerged LoRA run unless ``merge_adapter`` is set.

    Raises:
        FileNotFoundError: The run has no saved model.
        ModelNotFoundError: The base model of a LoRA run can no longer be found.
    """
    model_dir = Path(run_dir) / MODEL_FOLDER
    if not model_dir.is_dir():
        raise FileNotFoundError(
            f"The run folder {run_dir} has no {MODEL_FOLDER}/ folder, so the run did not "
            "complete. Use a completed run."
        )
    if not (model_dir / "adapter_config.json").is_file():
        model = load_causal_lm(str(model_dir), attention=attention, device=device)
        return model, load_tokenizer(str(model_dir))

    record = json.loads((model_dir / BASE_MODEL_FILE).read_text(encoding="utf-8"))
    base_reference = record["base_model"]
    try:
        resolve_model(base_reference, allow_hub=record.get("allow_hub", False))
    except ModelNotFoundError:
        recorded_path = record.get("base_model_path")
        if not recorded_path or not Path(recorded_path).is_dir():
            raise
        logger.warning(
            "Base model %s not found, so the recorded path %s is used.",
            base_reference,
            recorded_path,
        )
        base_reference = recorded_path

    base = load_causal_lm(
        base_reference,
        attention=attention,
        allow_hub=record.get("allow_hub", False),
        device=device,
    )
    model = PeftModel.from_pretrained(base, str(model_dir), is_trainable=False)
    model.eval()
    if merge_adapter:
        model = model.merge_and_unload()
        model.eval()

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


# The run


def run_causal_lm_training(
    store: RunStore,
    run_id: str,
    config: CausalLMTrainConfig,
    *,
    stop_signal: StopSignal | None = None,
) -> dict[str, Any]:
    """Fine-tune a causal LM for ``run_id`` and return the final metrics.

    The run is marked running at the start and completed, cancelled or failed
    at the end. Exceptions are re-raised after the run is marked failed. A
    cancelled run saves no model and returns an empty dict.

    Metrics: ``eval_loss`` (mean NLL per answer token on the validation split,
    of the kept epoch), ``eval_perplexity``, ``train_loss``, ``best_epoch``,
    ``epochs_run``, ``steps``, row counts and ``trainable_parameters``. The
    per-epoch losses are in ``history.json`` and in the ``eval`` events.
    """
    return run_with_status(store, run_id, lambda: _train(store, run_id, config, stop_signal))


def _training_arguments(config: CausalLMTrainConfig, run_dir: Path) -> TrainingArguments:
    # Weights stay float32. On a CUDA device with bf16 support the forward and
    # backward passes run under bf16 autocast, and the CPU runs float32 throughout.
    # NOTE: the tests run on the CPU only, so the CUDA and bf16 path is untested.
    return epoch_training_arguments(
        str(run_dir / CHECKPOINT_FOLDER),
        learning_rate=config.learning_rate,
        epochs=config.epochs,
        max_steps=config.max_steps,
        batch_size=config.batch_size,
        weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio,
        seed=config.seed,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        save_only_model=True,
        train_sampling_strategy="group_by_length",
    )


def _epoch_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per evaluation: epoch, step, train and validation loss."""
    return [
        {
            "epoch": entry.get("epoch"),
            "step": entry.get("step"),
            "train_loss": entry.get("epoch_train_loss"),
            "eval_loss": entry["eval_loss"],
            "eval_perplexity": entry.get("eval_perplexity"),
        }
        for entry in log_history
        if "eval_loss" in entry
    ]


def _probe_base_model(
    store: RunStore,
    run_id: str,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    data: GenerationData,
    train_rows: Sequence[int],
    validation_rows: Sequence[int],
    config: CausalLMTrainConfig,
    stop_signal: StopSignal | None,
) -> bool:
    """Run the knowledge probe on the base model; return True when the run was cancelled."""
    # Imported here because the knowledge module imports this one.
    from halluscope.inference.classify import InferenceCancelledError
    from halluscope.training.knowledge import ProbeSettings, probe_run_rows

    def should_stop() -> bool:
        if stop_signal is not None and stop_signal.received is not None:
            return True
        return store.cancel_requested(run_id)

    # NOTE: under multi-GPU training every process runs the whole probe and
    # writes the same knowledge.json. Only single-process runs are tested.
    try:
        probe_run_rows(
            store,
            run_id,
            model,
            tokenizer,
            data,
            train_rows,
            validation_rows,
            settings=ProbeSettings(samples=config.probe_samples, seed=config.seed),
            should_stop=should_stop,
        )
    except InferenceCancelledError:
        logger.info("Run %s: cancelled during the knowledge probe.", run_id)
        return True
    return False


def _answer_dynamics_callback(
    train_dataset: _CompletionDataset,
    tokenizer: PreTrainedTokenizerBase,
    row_numbers: Sequence[int],
    run_dir: Path,
    config: CausalLMTrainConfig,
    progress: ProgressEventsCallback,
) -> TrainerCallback:
    # Imported here because the answer dynamics module imports this one.
    from halluscope.training.answer_dynamics import ANSWER_DYNAMICS_FILE, AnswerDynamicsCallback

    return AnswerDynamicsCallback(
        train_dataset,
        CompletionCollator(tokenizer.pad_token_id),
        row_numbers,
        run_dir / ANSWER_DYNAMICS_FILE,
        batch_size=config.batch_size,
        is_cancelled=lambda: progress.cancelled,
    )


def _train(
    store: RunStore,
    run_id: str,
    config: CausalLMTrainConfig,
    stop_signal: StopSignal | None,
) -> tuple[dict[str, Any], bool]:
    run_dir = store.run_dir(run_id)
    set_seed(config.seed)

    # Data: validate, encode with the chat template, then a seeded split.
    data = load_generation_data(config)
    for warning in data.warnings:
        store.append_event(run_id, {"type": "warning", "message": warning})
    resolved = resolve_model(config.model, allow_hub=config.allow_hub)
    tokenizer = load_tokenizer(config.model, allow_hub=config.allow_hub)
    examples, dropped, truncated = _encode_rows(store, run_id, data, tokenizer, config.max_length)
    train_rows, validation_rows = _split_rows(data, sorted(examples), config)
    _save_generation_split(
        run_dir / GENERATION_SPLIT_FILE, data, train_rows, validation_rows, dropped, truncated
    )
    lengths = [len(example.input_ids) for example in examples.values()]
    store.append_event(
        run_id,
        {
            "type": "data",
            "rows": len(data),
            "train_rows": len(train_rows),
            "validation_rows": len(validation_rows),
            "dropped_rows": len(dropped),
            "truncated_rows": len(truncated),
            "max_tokens": max(lengths),
            "mean_tokens": round(float(np.mean(lengths)), 1),
            "data_sha256": file_sha256(config.data_path),
        },
    )

    # Model. Training uses the fused attention kernels; inspection reloads the
    # saved model with eager attention.
    model = load_causal_lm(
        config.model,
        attention="sdpa",
        allow_hub=config.allow_hub,
        device=pick_device(),
        dtype=torch.float32,
    )
    if config.probe_knowledge and _probe_base_model(
        store, run_id, model, tokenizer, data, train_rows, validation_rows, config, stop_signal
    ):
        return {}, True
    model.config.use_cache = False
    model = _prepare_model(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    store.append_event(
        run_id,
        {
            "type": "model",
            "method": config.method,
            "trainable_parameters": trainable,
            "total_parameters": total,
        },
    )
    logger.info(
        "Run %s: %s fine-tuning of %s on %d rows (%d of %d parameters trainable).",
        run_id,
        config.method,
        resolved.path,
        len(train_rows),
        trainable,
        total,
    )

    # Training. Evaluation and checkpoints happen once per epoch, and the
    # checkpoint with the lowest validation loss is restored at the end.
    progress = ProgressEventsCallback(store, run_id, stop_signal)
    callbacks: list[TrainerCallback] = [progress, _SkipEvaluationAfterCancel(progress)]
    if config.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(config.early_stopping_patience))
    train_dataset = _CompletionDataset([examples[i] for i in train_rows])
    if config.answer_dynamics:
        callbacks.append(
            _answer_dynamics_callback(
                train_dataset,
                tokenizer,
                [data.row_numbers[i] for i in train_rows],
                run_dir,
                config,
                progress,
            )
        )
    trainer = _CompletionTrainer(
        model=model,
        args=_training_arguments(config, run_dir),
        train_dataset=train_dataset,
        eval_dataset=_CompletionDataset([examples[i] for i in validation_rows]),
        data_collator=CompletionCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    train_output = trainer.train()

    if progress.cancelled:
        shutil.rmtree(run_dir / CHECKPOINT_FOLDER, ignore_errors=True)
        return {}, True

    # The kept epoch's evaluation gives the final numbers, so no extra pass runs.
    history = _epoch_history(trainer.state.log_history)
    if not history:
        history = _epoch_history([{**trainer.evaluate(), "epoch": trainer.state.epoch}])
    best = min(history, key=lambda entry: entry["eval_loss"])
    metrics = {
        "eval_loss": float(best["eval_loss"]),
        "eval_perplexity": perplexity(float(best["eval_loss"])),
        "train_loss": float(train_output.training_loss),
        "best_epoch": best["epoch"],
        "epochs_run": float(trainer.state.epoch or 0.0),
        "steps": int(trainer.state.global_step),
        "train_runtime_s": round(float(train_output.metrics.get("train_runtime", 0.0)), 1),
        "train_rows": len(train_rows),
        "validation_rows": len(validation_rows),
        "dropped_rows": len(dropped),
        "truncated_rows": len(truncated),
        "method": config.method,
        "trainable_parameters": trainable,
    }

    save_run_model(trainer.model, tokenizer, run_dir, config, resolved.path)
    store.write_json(run_id, "history.json", history)
    shutil.rmtree(run_dir / CHECKPOINT_FOLDER, ignore_errors=True)

    store.set_metrics(run_id, metrics)
    store.append_event(run_id, {"type": "metrics", **metrics})
    logger.info("Run %s finished: %s", run_id, metrics)
    return metrics, False
