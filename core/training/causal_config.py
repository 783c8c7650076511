"""Settings of a supervised fine-tuning run of a causal LM."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

METHODS = ("lora", "full")
"""Fine-tuning methods: LoRA adapters through PEFT, or every weight of the model."""

DEFAULT_LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
"""The attention projections of Llama-style models (SmolLM2, Llama, Mistral, Qwen2)."""

DEFAULT_LEARNING_RATES = {"lora": 5e-4, "full": 3e-5}
"""Peak learning rate per method when the settings leave it unset."""


@dataclass(frozen=True)
class CausalLMTrainConfig:
    """Settings for supervised fine-tuning of a causal LM on prompt-answer pairs.

    The defaults are sized for a LoRA fine-tune of SmolLM2-135M on a CPU. On the
    400-row demo QA set they give 2 epochs of 40 steps, each step 8 examples of
    about 107 tokens.

    Attributes:
        model: Model reference (bundled name, local folder or ``hub:ORG/NAME``).
        data_path: Training file (CSV, TSV, JSONL, JSON or Parquet).
        prompt_column: Column with the prompt (the question or instruction).
        answer_column: Column with the target answer. The loss covers only its tokens.
        context_column: Optional column with grounding text, placed before the
            prompt in the user message. It is the only part cut when an example
            is longer than ``max_length``.
        validation_fraction: Share of rows held out for validation, in (0, 0.5].
        seed: Seed of the train/validation split, the LoRA initialisation and
            the data order.
        learning_rate: Peak AdamW learning rate. None (the default) picks
            5e-4 for LoRA and 3e-5 for full fine-tuning.
        epochs: Number of passes over the training split (fractions allowed).
        batch_size: Examples per forward pass (and per eval batch).
        gradient_accumulation_steps: Forward passes per optimisation step, so
            the effective batch is ``batch_size * gradient_accumulation_steps``.
        weight_decay: AdamW weight decay.
        max_length: Maximum tokens per example, chat template included.
        early_stopping_patience: Epochs without a lower validation loss before
            training stops; None turns early stopping off. Either way the epoch
            with the lowest validation loss is the one kept.
        warmup_ratio: Share of steps with a linear learning-rate warm-up.
        method: ``"lora"`` trains low-rank adapters; ``"full"`` trains every weight.
        lora_rank: Rank r of each LoRA update matrix.
        lora_alpha: LoRA scaling numerator; the update is scaled by ``alpha / r``.
        lora_dropout: Dropout on the input of each LoRA update, in [0, 1).
        lora_target_modules: Names of the linear layers that get adapters. The
            default is the four attention projections of Llama-style models.
            GPT-2 names its attention layers ``c_attn`` and ``c_proj`` instead.
        merge: For LoRA, merge the adapter into the base weights and save the
            full model (the adapter is saved as well).
        max_steps: Stop after this many optimisation steps (-1: no limit).
        allow_hub: Allow a ``hub:`` model to be downloaded.
        probe_knowledge: Before training, ask the base model every question
            and sort the rows into known, maybe known and unknown facts
            (``knowledge.json``; see ``halluscope.training.knowledge``).
        probe_samples: Sampled answers per question in that probe, besides
            the greedy one.
        answer_dynamics: Record each training example's answer loss before
            training and at every epoch end (``answer_dynamics.json``). Off
            by default, because each record is a forward pass over the
            training split: an estimated third of an epoch's compute.
    """

    model: str
    data_path: str
    prompt_column: str
    answer_column: str
    context_column: str | None = None
    validation_fraction: float = 0.2
    seed: int = 0
    learning_rate: float | None = None
    epochs: float = 2.0
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    weight_decay: float = 0.0
    max_length: int = 256
    early_stopping_patience: int | None = None
    warmup_ratio: float = 0.1
    method: str = "lora"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.05
    lora_target_modules: tuple[str, ...] = DEFAULT_LORA_TARGET_MODULES
    merge: bool = False
    max_steps: int = -1
    allow_hub: bool = False
    probe_knowledge: bool = False
    probe_samples: int = 4
    answer_dynamics: bool = False
    kind: str = field(default="generation", init=False)

    def __post_init__(self) -> None:
        # Lists from JSON become tuples, so the settings stay hashable and frozen.
        object.__setattr__(self, "lora_target_modules", tuple(self.lora_target_modules))
        if self.method in DEFAULT_LEARNING_RATES and self.learning_rate is None:
            object.__setattr__(self, "learning_rate", DEFAULT_LEARNING_RATES[self.method])

        columns = {
            "prompt_column": self.prompt_column,
            "answer_column": self.answer_column,
            "context_column": self.context_column,
        }
        named = [name for name in columns.values() if name is not None]
        checks = [
            (
                all(isinstance(name, str) and name for name in named),
                "prompt_column, answer_column and context_column must be non-empty column names",
            ),
            (len(set(named)) == len(named), "prompt, answer and context need distinct columns"),
            (self.method in METHODS, f"method must be one of {', '.join(METHODS)}"),
            (0.0 < self.validation_fraction <= 0.5, "validation_fraction must be in (0, 0.5]"),
            (
                self.learning_rate is not None and self.learning_rate > 0,
                "learning_rate must be positive",
            ),
            (self.epochs > 0, "epochs must be positive"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (
                self.gradient_accumulation_steps >= 1,
                "gradient_accumulation_steps must be at least 1",
            ),
            (self.weight_decay >= 0, "weight_decay must not be negative"),
            (16 <= self.max_length <= 32768, "max_length must be between 16 and 32768 tokens"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (
                self.early_stopping_patience is None or self.early_stopping_patience >= 1,
                "early_stopping_patience must be at least 1 (or None to turn it off)",
            ),
            (self.lora_rank >= 1, "lora_rank must be at least 1"),
            (self.lora_alpha > 0, "lora_alpha must be positive"),
            (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
            (
                len(self.lora_target_modules) > 0
                and all(isinstance(name, str) and name for name in self.lora_target_modules),
                "lora_target_modules must name at least one linear layer, such as q_proj",
            ),
            (not self.merge or self.method == "lora", "merge applies to method 'lora' only"),
            (
                self.max_steps == -1 or self.max_steps >= 1,
                "max_steps must be -1 (no limit) or >= 1",
            ),
            (0 <= self.probe_samples <= 64, "probe_samples must be between 0 and 64"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"Invalid fine-tuning setting: {message}.")

    @property
    def effective_batch_size(self) -> int:
        """Examples per optimisation step: ``batch_size * gradient_accumulation_steps``."""
        return self.batch_size * self.gradient_accumulation_steps

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict (tuples become lists)."""
        values = asdict(self)
        values["lora_target_modules"] = list(self.lora_target_modules)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CausalLMTrainConfig:
        """Build settings from a dict, ignoring keys that are not settings."""
        names = {f.name for f in fields(cls) if f.init}
        return cls(**{key: value for key, value in values.items() if key in names})
