"""A detector that fine-tunes the bundled encoder to tag hallucinated words of a response.

The encoder (MiniLM by default) reads ``[CLS] response [SEP] context window [SEP]``
and a token-classification head gives every response word a probability of
being hallucinated, read at the word's first sub-token. This is the set-up of
the best open token-level detectors, which use larger encoders and longer
inputs, with a small encoder that trains on a CPU.

Long inputs are windowed, never cut silently:

- the context is split into windows of at most ``max_length`` tokens that
  overlap by ``stride`` tokens, and each window is read with the whole
  response. A word's probability is the mean over its windows.
- a response too long to share a window with any context is split into
  chunks of whole words, each read with every context window.

The detector maps word probabilities onto the tokens of the scoring model's
response: a token takes the largest probability of the words it overlaps.
The encoder's weights are saved with ``save_pretrained`` (safetensors) next
to a ``detector.json`` of settings and training facts.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)

from halluscope.detect.base import DetectionResult, register_detector
from halluscope.detect.generation import (
    RESPONSE_REDUCES,
    GenerationDetector,
    ResponseReduce,
    empty_result,
    reduce_token_scores,
)
from halluscope.inference.generate import TokenScores
from halluscope.inference.runtime import eval_mode, model_device
from halluscope.inference.scoring import tokens_in_span, whitespace_words
from halluscope.models import pick_device, resolve_model

logger = logging.getLogger(__name__)

SETTINGS_FILE = "detector.json"
FORMAT_VERSION = 1
DEFAULT_ENCODER = "minilm"
DEFAULT_MAX_LENGTH = 512
DEFAULT_STRIDE = 128
IGNORE_INDEX = -100
LABEL_NAMES = {0: "faithful", 1: "hallucinated"}


class TrainingCancelledError(RuntimeError):
    """Raised when ``should_stop`` requests that the token-classifier training stop."""


@dataclass(frozen=True)
class WordLabelledResponse:
    """A response to train on, with one label per whitespace-separated word.

    Attributes:
        response: the response text; its words are ``response.split()``.
        context: the text the response should be grounded in ("" for none).
        word_labels: per word, 1 (hallucinated), 0 (faithful) or -1 (left out).
    """

    response: str
    context: str
    word_labels: tuple[int, ...]

    def __post_init__(self) -> None:
        words = len(self.response.split())
        if len(self.word_labels) != words:
            raise ValueError(
                f"{len(self.word_labels)} word labels for {words} words of the response "
                f"{self.response[:60]!r}; give one label per whitespace-separated word."
            )
        invalid = sorted({label for label in self.word_labels if label not in (-1, 0, 1)})
        if invalid:
            raise ValueError(f"Word labels must be 1, 0 or -1 (left out), got {invalid}.")


@dataclass(frozen=True)
class EncodedWindow:
    """One encoder input: a chunk of response words with one context window.

    Attributes:
        input_ids: token ids of ``[CLS] words [SEP] context window [SEP]``.
        token_type_ids: 0 over the response part, 1 over the context part.
        first_token: per word of the chunk, the position of its first sub-token.
        first_word: index in the whole response of the chunk's first word.
    """

    input_ids: list[int]
    token_type_ids: list[int]
    first_token: list[int]
    first_word: int


def _word_ids(tokenizer: PreTrainedTokenizerBase, word: str) -> list[int]:
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    return ids or [tokenizer.unk_token_id]


def _response_chunks(counts: Sequence[int], budget: int) -> list[range]:
    """Split word indices into runs whose sub-token counts fit ``budget`` (a word is never split).

    A single word longer than the budget becomes a chunk of its own and is
    cut to the budget when encoded.
    """
    chunks, start, used = [], 0, 0
    for index, count in enumerate(counts):
        if index > start and used + count > budget:
            chunks.append(range(start, index))
            start, used = index, 0
        used += count
    if start < len(counts):
        chunks.append(range(start, len(counts)))
    return chunks


def encode_windows(
    tokenizer: PreTrainedTokenizerBase,
    words: Sequence[str],
    context: str,
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    stride: int = DEFAULT_STRIDE,
) -> list[EncodedWindow]:
    """Encode a response and its context as overlapping windows (see the module docstring).

    The response part of each window takes at most half of ``max_length``;
    the rest contains a context window, and consecutive context windows share
    ``stride`` tokens. Every response word appears in at least one window.

    Raises:
        ValueError: ``max_length`` below 16, or ``stride`` not smaller than
            the context room of a window.
    """
    if max_length < 16:
        raise ValueError(f"max_length must be at least 16 tokens, got {max_length}.")
    word_pieces = [_word_ids(tokenizer, word) for word in words]
    # verbose=False: a context over the encoder's limit is expected, because it is windowed.
    context_ids = (
        tokenizer(context, add_special_tokens=False, verbose=False)["input_ids"] if context else []
    )
    response_budget = (max_length - 3) // 2
    chunks = _response_chunks([len(pieces) for pieces in word_pieces], response_budget)

    windows = []
    for chunk in chunks:
        response_ids, first_token = [], []
        for index in chunk:
            first_token.append(1 + len(response_ids))
            response_ids.extend(word_pieces[index])
        response_ids = response_ids[:response_budget]
        first_token = [min(position, response_budget) for position in first_token]

        room = max_length - 3 - len(response_ids)
        if stride >= room:
            raise ValueError(
                f"stride ({stride}) must be smaller than the context room of a window "
                f"({room} tokens with max_length={max_length}); lower the stride."
            )
        starts = range(0, max(1, len(context_ids) - stride), room - stride) if context_ids else [0]
        for start in starts:
            piece = context_ids[start : start + room]
            head = [tokenizer.cls_token_id, *response_ids, tokenizer.sep_token_id]
            tail = [*piece, tokenizer.sep_token_id] if piece else []
            windows.append(
                EncodedWindow(
                    input_ids=head + tail,
                    token_type_ids=[0] * len(head) + [1] * len(tail),
                    first_token=first_token,
                    first_word=chunk.start,
                )
            )
    return windows


def _pad_batch(
    windows: Sequence[EncodedWindow], pad_id: int, labels: Sequence[Sequence[int]] | None = None
) -> dict[str, torch.Tensor]:
    width = max(len(window.input_ids) for window in windows)
    input_ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
    token_type_ids = torch.zeros((len(windows), width), dtype=torch.long)
    attention_mask = torch.zeros((len(windows), width), dtype=torch.long)
    target = torch.full((len(windows), width), IGNORE_INDEX, dtype=torch.long)
    for row, window in enumerate(windows):
        length = len(window.input_ids)
        input_ids[row, :length] = torch.tensor(window.input_ids)
        token_type_ids[row, :length] = torch.tensor(window.token_type_ids)
        attention_mask[row, :length] = 1
        if labels is not None:
            for position, label in zip(window.first_token, labels[row], strict=True):
                if label >= 0:
                    target[row, position] = label
    batch = {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
    }
    if labels is not None:
        batch["labels"] = target
    return batch


@register_detector
@dataclass(frozen=True, eq=False)
class TokenClassifierDetector(GenerationDetector):
    """Score response tokens with an encoder fine-tuned to tag hallucinated words.

    Build one with ``train_token_classifier`` or ``load``. The scoring
    model's own numbers are not used: only the response text and its context.

    Attributes:
        encoder: the fine-tuned encoder with a two-class token head.
        encoder_tokenizer: its tokenizer (fast, WordPiece for MiniLM).
        max_length: tokens per encoder window.
        stride: tokens shared by consecutive context windows.
        threshold: the response is flagged when its score is at least this.
        reduce: how token scores become the response score, "max" or "mean".
        batch_size: windows per forward pass.
        training: facts about the training data and run.
    """

    name: ClassVar[str] = "token_classifier"
    description: ClassVar[str] = (
        "The bundled encoder fine-tuned to tag hallucinated words given the context; "
        "needs a trained folder."
    )
    expensive: ClassVar[bool] = True
    probabilistic: ClassVar[bool] = True
    reads_full_context: ClassVar[bool] = True

    encoder: PreTrainedModel | None = field(default=None, repr=False)
    encoder_tokenizer: PreTrainedTokenizerBase | None = field(default=None, repr=False)
    max_length: int = DEFAULT_MAX_LENGTH
    stride: int = DEFAULT_STRIDE
    threshold: float = 0.5
    reduce: ResponseReduce = "max"
    batch_size: int = 16
    training: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.reduce not in RESPONSE_REDUCES:
            raise ValueError(f"reduce must be one of {RESPONSE_REDUCES}, got {self.reduce!r}.")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {self.threshold}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}.")

    @classmethod
    def for_model(
        cls,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        **options: Any,
    ) -> GenerationDetector:
        """Load the trained detector from ``options["path"]`` (the causal LM is not used).

        Raises:
            ValueError: no ``path`` was given.
        """
        del model, tokenizer
        path = options.pop("path", None)
        if path is None:
            raise ValueError(
                "The token_classifier detector must be trained first: run `halluscope evaluate "
                "FILE --dataset ... --train-on TRAIN_FILE --detectors token_classifier "
                "--detector-dir DIR` and pass DIR/token_classifier as its path."
            )
        return cls.load(path, **options)

    # --- scoring ----------------------------------------------------------------

    def _require_encoder(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        if self.encoder is None or self.encoder_tokenizer is None:
            raise ValueError(
                "The token_classifier detector has no trained encoder; train it with "
                "train_token_classifier or load a saved one."
            )
        return self.encoder, self.encoder_tokenizer

    @torch.inference_mode()
    def word_probabilities(self, words: Sequence[str], context: str | None) -> np.ndarray:
        """Return the hallucination probability of each word, float array [n_words].

        A word's probability is the mean over the context windows it was read with.
        """
        encoder, tokenizer = self._require_encoder()
        if not words:
            return np.zeros(0, dtype=np.float32)
        windows = encode_windows(
            tokenizer, words, context or "", max_length=self.max_length, stride=self.stride
        )
        sums = np.zeros(len(words), dtype=np.float64)
        counts = np.zeros(len(words), dtype=np.int64)
        device = model_device(encoder)
        with eval_mode(encoder):
            for start in range(0, len(windows), self.batch_size):
                batch_windows = windows[start : start + self.batch_size]
                batch = _pad_batch(batch_windows, tokenizer.pad_token_id)
                logits = encoder(**{key: value.to(device) for key, value in batch.items()}).logits
                probabilities = torch.softmax(logits.float(), dim=-1)[..., 1].cpu().numpy()
                for row, window in enumerate(batch_windows):
                    positions = np.asarray(window.first_token)
                    indices = window.first_word + np.arange(len(positions))
                    sums[indices] += probabilities[row, positions]
                    counts[indices] += 1
        return (sums / np.maximum(counts, 1)).astype(np.float32)

    def detect(self, response: TokenScores, *, context: str | None = None) -> DetectionResult:
        """Return the verdict on one response: each token takes the probability of its word."""
        if len(response) == 0:
            return empty_result(self.name)
        spans = whitespace_words(response.text)
        probabilities = self.word_probabilities([word for word, _, _ in spans], context)
        token_scores = np.zeros(len(response), dtype=np.float32)
        for (_, start, end), probability in zip(spans, probabilities, strict=True):
            indices = tokens_in_span(response.offsets, start, end)
            token_scores[indices] = np.maximum(token_scores[indices], probability)

        score = reduce_token_scores(token_scores, self.reduce)
        if spans:
            worst = int(np.argmax(probabilities))
            reason = (
                f"{self.reduce} word probability {score:.2f}; highest "
                f"{float(probabilities[worst]):.2f} at {spans[worst][0]!r}"
            )
        else:
            reason = "no words in the response"
        return DetectionResult(
            detector=self.name,
            score=score,
            flagged=score >= self.threshold,
            reason=reason,
            token_scores=token_scores,
        )

    # --- storage ----------------------------------------------------------------

    def save(self, folder: Path | str) -> Path:
        """Write the encoder, its tokenizer and ``detector.json`` into ``folder`` and return it."""
        encoder, tokenizer = self._require_encoder()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        encoder.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        document = {
            "detector": self.name,
            "format_version": FORMAT_VERSION,
            "settings": {
                "max_length": self.max_length,
                "stride": self.stride,
                "threshold": self.threshold,
                "reduce": self.reduce,
                "batch_size": self.batch_size,
            },
            "training": dict(self.training),
        }
        temporary = folder / (SETTINGS_FILE + ".tmp")
        temporary.write_text(json.dumps(document, indent=1), encoding="utf-8")
        temporary.replace(folder / SETTINGS_FILE)
        return folder

    @classmethod
    def load(
        cls, folder: Path | str, *, device: torch.device | None = None, **overrides: Any
    ) -> TokenClassifierDetector:
        """Read a detector saved by ``save``; ``overrides`` replace saved settings (threshold, ...).

        Raises:
            FileNotFoundError: ``folder`` has no ``detector.json``.
            ValueError: the folder contains another detector or an unsupported format.
        """
        folder = Path(folder)
        settings_path = folder / SETTINGS_FILE
        if not settings_path.is_file():
            raise FileNotFoundError(
                f"{folder} is not a saved token_classifier detector: {SETTINGS_FILE} is missing. "
                "Pass the folder that `--detector-dir` wrote (DIR/token_classifier)."
            )
        try:
            document = json.loads(settings_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{settings_path}: invalid JSON ({error.msg}).") from error
        if not isinstance(document, dict) or document.get("detector") != cls.name:
            found = document.get("detector") if isinstance(document, dict) else None
            raise ValueError(
                f"{settings_path}: expected a saved {cls.name!r} detector, found {found!r}."
            )
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{settings_path}: format version {document.get('format_version')!r} is not "
                f"supported (expected {FORMAT_VERSION}); train the detector again."
            )
        encoder = AutoModelForTokenClassification.from_pretrained(
            folder, trust_remote_code=False, use_safetensors=True
        )
        encoder.to(device or pick_device())
        encoder.eval()
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        settings = {**document.get("settings", {}), **overrides}
        return cls(
            encoder=encoder,
            encoder_tokenizer=tokenizer,
            training=document.get("training", {}),
            **settings,
        )


def _labelled_windows(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[WordLabelledResponse],
    max_length: int,
    stride: int,
) -> tuple[list[EncodedWindow], list[list[int]]]:
    windows, labels = [], []
    for example in examples:
        words = example.response.split()
        for window in encode_windows(
            tokenizer, words, example.context, max_length=max_length, stride=stride
        ):
            first = window.first_word
            windows.append(window)
            labels.append(list(example.word_labels[first : first + len(window.first_token)]))
    return windows, labels


def train_token_classifier(
    examples: Sequence[WordLabelledResponse],
    *,
    encoder: str = DEFAULT_ENCODER,
    epochs: int = 3,
    learning_rate: float = 5e-5,
    batch_size: int = 8,
    max_length: int = DEFAULT_MAX_LENGTH,
    stride: int = DEFAULT_STRIDE,
    seed: int = 0,
    reduce: ResponseReduce = "max",
    device: torch.device | None = None,
    training: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TokenClassifierDetector:
    """Fine-tune ``encoder`` with a new two-class token head on word-labelled responses.

    Training minimises the cross-entropy of each labelled word's first
    sub-token, with AdamW and a linear learning-rate decay after a 10% warm-up.

    Args:
        examples: the labelled responses and their contexts.
        encoder: a bundled encoder name or a local folder (default MiniLM).
        epochs: passes over the windows.
        learning_rate: peak AdamW learning rate.
        batch_size: windows per optimisation step.
        max_length: tokens per encoder window.
        stride: tokens shared by consecutive context windows.
        seed: seeds the head's initialisation and the shuffling.
        reduce: how the detector turns token scores into a response score.
        device: where to train; default CUDA when available, else the CPU.
        training: facts to store with the detector, such as the file names.
        progress: called as ``progress(steps_done, steps_total)`` after each step.
        should_stop: polled before each step; returning True stops training.

    Raises:
        ValueError: no labelled word, or only one class among the labels.
        TrainingCancelledError: ``should_stop`` returned True.
    """
    started = time.perf_counter()
    all_labels = [label for example in examples for label in example.word_labels if label >= 0]
    if len(set(all_labels)) < 2:
        raise ValueError(
            f"Training needs both faithful (0) and hallucinated (1) words, but the "
            f"{len(all_labels)} labelled words have the labels {sorted(set(all_labels))}."
        )

    torch.manual_seed(seed)
    resolved = resolve_model(encoder)
    tokenizer = AutoTokenizer.from_pretrained(resolved.path, trust_remote_code=False)
    model = AutoModelForTokenClassification.from_pretrained(
        resolved.path,
        trust_remote_code=False,
        use_safetensors=not resolved.pickle_only,
        num_labels=2,
        id2label=LABEL_NAMES,
        label2id={name: index for index, name in LABEL_NAMES.items()},
    )
    device = device or pick_device()
    model.to(device)

    windows, labels = _labelled_windows(tokenizer, examples, max_length, stride)
    steps_per_epoch = math.ceil(len(windows) / batch_size)
    total_steps = steps_per_epoch * epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * total_steps), total_steps)
    logger.info(
        "Training token_classifier on %d windows of %d responses (%d labelled words), %d steps.",
        len(windows),
        len(examples),
        len(all_labels),
        total_steps,
    )

    order = list(range(len(windows)))
    shuffler = random.Random(seed)
    step, losses = 0, []
    model.train()
    for epoch in range(epochs):
        shuffler.shuffle(order)
        epoch_losses = []
        for start in range(0, len(order), batch_size):
            if should_stop is not None and should_stop():
                raise TrainingCancelledError(
                    f"Token-classifier training stopped after {step} of {total_steps} steps."
                )
            rows = order[start : start + batch_size]
            batch = _pad_batch(
                [windows[row] for row in rows],
                tokenizer.pad_token_id,
                [labels[row] for row in rows],
            )
            if (batch["labels"] != IGNORE_INDEX).sum() == 0:
                continue
            loss = model(**{key: value.to(device) for key, value in batch.items()}).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            epoch_losses.append(float(loss.detach()))
            step += 1
            if progress is not None:
                progress(step, total_steps)
        losses.append(round(float(np.mean(epoch_losses)), 4) if epoch_losses else None)
        logger.info("token_classifier epoch %d: mean loss %s", epoch + 1, losses[-1])
    model.eval()

    seconds = time.perf_counter() - started
    facts = {
        **(training or {}),
        "encoder": encoder,
        "responses": len(examples),
        "windows": len(windows),
        "labelled_words": len(all_labels),
        "positive_words": int(sum(all_labels)),
        "epochs": epochs,
        "learning_rate": learning_rate,
        "epoch_losses": losses,
        "seconds": round(seconds, 1),
    }
    logger.info("Trained token_classifier in %.1f s", seconds)
    return TokenClassifierDetector(
        encoder=model,
        encoder_tokenizer=tokenizer,
        max_length=max_length,
        stride=stride,
        reduce=reduce,
        training=facts,
    )
