"""Batched generation with a causal LM, keeping per-token log-probs, entropies and ranks.

Every number is computed from the raw logits of the LM head, before
temperature, top-k or top-p change them (``output_logits=True`` in
``model.generate``). A sampled token that top-k would have removed still gets
its true, finite log-probability, and a greedy token has rank 0.

Prompts are left-padded, because a decoder-only model appends new tokens at
the right end of every row. transformers derives the position ids of a
left-padded row from its attention mask (checked for Llama and GPT-2 by the
tests), so batched and unbatched greedy generation return the same tokens.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.inference.classify import InferenceCancelledError
from halluscope.inference.prompting import encode_prompt
from halluscope.inference.runtime import eval_mode, model_device

logger = logging.getLogger(__name__)

FinishReason = Literal["eos", "length"]
FINISH_REASONS: tuple[FinishReason, ...] = ("eos", "length")

# Log-probs are at most 0 and entropies at least 0; float32 rounding may
# overshoot by a little.
_ROUNDING_TOLERANCE = 1e-4

# Printed by the tokenizer's decoder for an incomplete UTF-8 sequence, such as
# the first byte token of an emoji.
_REPLACEMENT_CHARACTER = "\ufffd"


@dataclass(frozen=True, kw_only=True)
class TokenScores:
    """A response of a causal LM to a prompt, with the LM's numbers for each of its n tokens.

    Attributes:
        prompt: the prompt text the response continues.
        text: the response text, equal to ``"".join(tokens)``.
        token_ids: int64 array [n], the response tokens (no prompt, padding or EOS).
        tokens: the text of each token, n strings. A token that ends inside a
            multi-byte character (part of an emoji) has ``""``, and the token
            that completes the character contains it.
        offsets: int64 array [n, 2], the character span ``[start, end)`` of each
            token in ``text``. The byte tokens of one character share its span.
        logprobs: float32 array [n], natural log-probability of each token under
            the raw logits, <= 0.
        entropies: float32 array [n], entropy in nats of the raw next-token
            distribution at each step, in [0, log(vocab_size)].
        ranks: int64 array [n], how many vocabulary entries have a higher raw
            logit than the chosen token (0 for the argmax).
        vocab_size: size of the LM head's output, for normalising entropies.
        prompt_length: number of tokens of the prompt, special tokens included.
    """

    prompt: str
    text: str
    token_ids: np.ndarray
    tokens: tuple[str, ...]
    offsets: np.ndarray
    logprobs: np.ndarray
    entropies: np.ndarray
    ranks: np.ndarray
    vocab_size: int
    prompt_length: int

    def __post_init__(self) -> None:
        name = type(self).__name__
        object.__setattr__(self, "token_ids", np.asarray(self.token_ids, dtype=np.int64))
        object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "offsets", np.asarray(self.offsets, dtype=np.int64))
        object.__setattr__(self, "logprobs", np.asarray(self.logprobs, dtype=np.float32))
        object.__setattr__(self, "entropies", np.asarray(self.entropies, dtype=np.float32))
        object.__setattr__(self, "ranks", np.asarray(self.ranks, dtype=np.int64))

        if not isinstance(self.prompt, str) or not isinstance(self.text, str):
            raise TypeError(f"{name}: prompt and text must be strings.")
        if self.vocab_size < 2:
            raise ValueError(f"{name}: vocab_size must be at least 2, got {self.vocab_size}.")
        if self.prompt_length < 0:
            raise ValueError(f"{name}: prompt_length must be >= 0, got {self.prompt_length}.")

        n = self.token_ids.shape[0] if self.token_ids.ndim == 1 else -1
        if n < 0:
            raise ValueError(
                f"{name}: token_ids must be 1-dimensional, got {self.token_ids.shape}."
            )
        for field_name in ("logprobs", "entropies", "ranks"):
            shape = getattr(self, field_name).shape
            if shape != (n,):
                raise ValueError(f"{name}: {field_name} must have shape ({n},), got {shape}.")
        if len(self.tokens) != n:
            raise ValueError(f"{name}: tokens has {len(self.tokens)} entries for {n} token ids.")
        if self.offsets.shape != (n, 2):
            raise ValueError(f"{name}: offsets must have shape ({n}, 2), got {self.offsets.shape}.")
        if "".join(self.tokens) != self.text:
            raise ValueError(f"{name}: the tokens do not join to the text {self.text!r:.80}.")
        if n == 0:
            return

        starts, ends = self.offsets[:, 0], self.offsets[:, 1]
        if np.any(starts < 0) or np.any(starts > ends) or np.any(ends > len(self.text)):
            raise ValueError(
                f"{name}: offsets must satisfy 0 <= start <= end <= {len(self.text)} "
                "(the text length)."
            )
        if not np.all(np.isfinite(self.logprobs)) or np.any(self.logprobs > _ROUNDING_TOLERANCE):
            raise ValueError(f"{name}: logprobs must be finite and <= 0.")
        max_entropy = math.log(self.vocab_size) + _ROUNDING_TOLERANCE
        if (
            not np.all(np.isfinite(self.entropies))
            or np.any(self.entropies < -_ROUNDING_TOLERANCE)
            or np.any(self.entropies > max_entropy)
        ):
            raise ValueError(f"{name}: entropies must be finite and lie in [0, log(vocab_size)].")
        if np.any(self.ranks < 0) or np.any(self.ranks >= self.vocab_size):
            raise ValueError(f"{name}: ranks must lie in [0, vocab_size).")

    def __len__(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def probabilities(self) -> np.ndarray:
        """Probability of each token under the raw logits, float32 array [n] in [0, 1]."""
        return np.exp(self.logprobs)

    @property
    def normalized_entropies(self) -> np.ndarray:
        """Entropies divided by log(vocab_size), float32 array [n] in [0, 1]."""
        return np.clip(self.entropies / math.log(self.vocab_size), 0.0, 1.0).astype(np.float32)

    def token_records(self) -> list[dict[str, object]]:
        """Return one JSON-ready dict per token.

        Keys: token, token_id, start, end, logprob, entropy and rank.
        """
        return [
            {
                "token": self.tokens[index],
                "token_id": int(self.token_ids[index]),
                "start": int(self.offsets[index, 0]),
                "end": int(self.offsets[index, 1]),
                "logprob": float(self.logprobs[index]),
                "entropy": float(self.entropies[index]),
                "rank": int(self.ranks[index]),
            }
            for index in range(len(self))
        ]


@dataclass(frozen=True, kw_only=True)
class GeneratedAnswer(TokenScores):
    """An answer generated by ``generate_answers``, with its per-token numbers.

    Attributes:
        finish_reason: "eos" when the model emitted an end-of-sequence token
            (which is not part of ``token_ids``), "length" when it reached
            ``max_new_tokens`` first.
    """

    finish_reason: FinishReason

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.finish_reason not in FINISH_REASONS:
            raise ValueError(
                f"finish_reason must be one of {FINISH_REASONS}, got {self.finish_reason!r}."
            )


def token_statistics(
    logits: torch.Tensor, token_ids: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute log-prob, entropy and rank of chosen tokens from raw next-token logits.

    Args:
        logits: float tensor [n, vocab], the logits that predict each token.
        token_ids: int tensor [n], the chosen tokens.

    Returns:
        ``(logprobs, entropies, ranks)``: float32 [n] natural log-probs, float32
        [n] entropies in nats, and int64 [n] counts of vocabulary entries whose
        logit is strictly higher than the chosen token's.
    """
    if logits.ndim != 2 or token_ids.shape != (logits.shape[0],):
        raise ValueError(
            f"Expected logits [n, vocab] and token_ids [n], got {tuple(logits.shape)} "
            f"and {tuple(token_ids.shape)}."
        )
    logits = logits.float()
    token_ids = token_ids.to(device=logits.device, dtype=torch.long)

    log_probabilities = torch.log_softmax(logits, dim=-1)
    chosen = log_probabilities.gather(-1, token_ids.unsqueeze(-1)).squeeze(-1)
    # 0 * log(0) is taken as 0: exp underflows to 0 where the log-prob is -inf.
    entropies = -(log_probabilities.exp() * log_probabilities.nan_to_num(neginf=0.0)).sum(-1)
    chosen_logits = logits.gather(-1, token_ids.unsqueeze(-1))
    ranks = (logits > chosen_logits).sum(-1)

    return (
        chosen.cpu().numpy().astype(np.float32),
        entropies.cpu().numpy().astype(np.float32),
        ranks.cpu().numpy().astype(np.int64),
    )


def decode_token_pieces(
    tokenizer: PreTrainedTokenizerBase, token_ids: Sequence[int]
) -> tuple[tuple[str, ...], np.ndarray]:
    """Split the decoded text of ``token_ids`` into one piece per token.

    Each piece is what decoding one more token adds to the text. A token that
    ends inside a multi-byte character adds nothing (its piece is ``""``), and
    it shares the character span of the token that completes the character.
    Special tokens decode to ``""``.

    Returns:
        ``(pieces, offsets)``: n strings that join to the decoded text, and an
        int64 array [n, 2] of ``[start, end)`` character spans in that text.
    """
    ids = [int(token_id) for token_id in token_ids]
    pieces: list[str] = []
    offsets = np.zeros((len(ids), 2), dtype=np.int64)
    text = ""  # the joined pieces so far
    previous = ""  # the decoded text of the tokens emitted so far
    pending_from = 0  # first token whose text has not been emitted yet

    for index in range(len(ids)):
        decoded = tokenizer.decode(
            ids[: index + 1], skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        is_last = index == len(ids) - 1
        if decoded.endswith(_REPLACEMENT_CHARACTER) and not is_last:
            pieces.append("")
            continue

        if decoded.startswith(previous):
            piece = decoded[len(previous) :]
        else:
            # NOTE: a decoder that rewrites earlier text when a token is added
            # (rare) keeps the earlier pieces as they were, so ``"".join(pieces)``
            # may then differ from ``tokenizer.decode`` by that rewrite.
            logger.debug("Decoding token %d rewrote %r to %r", index, previous, decoded)
            piece = decoded[len(_common_prefix(previous, decoded)) :]
        pieces.append(piece)
        offsets[pending_from : index + 1] = (len(text), len(text) + len(piece))
        text += piece
        previous = decoded
        pending_from = index + 1

    return tuple(pieces), offsets


def _common_prefix(first: str, second: str) -> str:
    length = 0
    for left, right in zip(first, second, strict=False):
        if left != right:
            break
        length += 1
    return first[:length]


def eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Return the end-of-sequence ids of the model's generation config and of the tokenizer."""
    candidates: list[object] = []
    generation_config = getattr(model, "generation_config", None)
    configured = getattr(generation_config, "eos_token_id", None)
    if isinstance(configured, (list, tuple)):
        candidates.extend(configured)
    else:
        candidates.append(configured)
    candidates.append(tokenizer.eos_token_id)

    ids: list[int] = []
    for candidate in candidates:
        if isinstance(candidate, int) and candidate >= 0 and candidate not in ids:
            ids.append(candidate)
    return ids


def max_positions(model: PreTrainedModel) -> int | None:
    """Return the model's maximum sequence length in tokens, or None when the config has none."""
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        return positions
    return None


def left_pad(
    sequences: Sequence[Sequence[int]], pad_token_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token id lists into ``(input_ids, attention_mask)``, both int64 [batch, length].

    The padding is written here rather than by ``tokenizer.pad``, so the
    tokenizer's ``padding_side`` is never changed.
    """
    length = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if sequence:
            input_ids[row, length - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
            attention_mask[row, length - len(sequence) :] = 1
    return input_ids.to(device), attention_mask.to(device)


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's generators for the block and restore their state afterwards."""
    if seed is None:
        yield
        return
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _check_generation_arguments(
    max_new_tokens: int, temperature: float, top_p: float, top_k: int, batch_size: int
) -> None:
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}.")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1], got {top_p}.")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 turns it off), got {top_k}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")


def _encode_prompts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int,
) -> list[list[int]]:
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of strings, not one string; wrap it in a list.")
    limit = max_positions(model)
    encoded = []
    for row, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise TypeError(f"prompts row {row}: expected a string, got {type(prompt).__name__}.")
        ids = encode_prompt(tokenizer, prompt)
        if not ids:
            raise ValueError(
                f"prompts row {row}: the prompt is empty; the model needs at least one token."
            )
        if limit is not None and len(ids) + max_new_tokens > limit:
            raise ValueError(
                f"prompts row {row}: {len(ids)} prompt tokens plus max_new_tokens="
                f"{max_new_tokens} exceed the model's limit of {limit} positions. "
                "Shorten the prompt (its context) or lower max_new_tokens."
            )
        encoded.append(ids)
    return encoded


def generate_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int | None = None,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[GeneratedAnswer]:
    """Generate an answer to each prompt, with log-prob, entropy and rank of every new token.

    Prompts are tokenized with ``encode_prompt`` (pass the text of
    ``render_prompt``), sorted by length and left-padded per batch. Generation
    stops at the model's or the tokenizer's EOS token or after
    ``max_new_tokens``. The model runs on its own device under
    ``torch.inference_mode()`` and in eval mode.

    Args:
        model: a decoder-only causal LM.
        tokenizer: its tokenizer, with a pad token (``load_tokenizer`` sets one).
        prompts: the prompt texts.
        max_new_tokens: the maximum number of generated tokens per answer (default 64).
        do_sample: sample instead of greedy decoding (default False).
        temperature: sampling temperature (default 1.0); only with ``do_sample``.
        top_p: nucleus sampling mass in (0, 1] (default 1.0, off); only with ``do_sample``.
        top_k: sample from the k most likely tokens (default 0, off); only with ``do_sample``.
        seed: seeds torch's generators for the call and restores them after,
            so a sampled run is repeatable with the same prompts and batch size.
        batch_size: prompts per ``model.generate`` call (default 8).
        progress: called as ``progress(prompts_done, prompts_total)`` after each batch.
        should_stop: polled before each batch; returning True cancels the run.

    Returns:
        One ``GeneratedAnswer`` per prompt, in the order of ``prompts``. The
        numbers come from the raw logits, whatever the sampling settings.

    Raises:
        InferenceCancelledError: ``should_stop`` returned True.
        ValueError: bad arguments, a tokenizer without a pad token, an
            encoder-decoder model, or a prompt too long for the model.
    """
    _check_generation_arguments(max_new_tokens, temperature, top_p, top_k, batch_size)
    if getattr(model.config, "is_encoder_decoder", False):
        raise ValueError(
            f"generate_answers needs a decoder-only causal LM, got the encoder-decoder "
            f"{type(model).__name__}."
        )
    if tokenizer.pad_token_id is None:
        raise ValueError(
            "The tokenizer has no pad token, which batching needs. Set tokenizer.pad_token "
            "(for example to tokenizer.eos_token) before calling generate_answers."
        )
    encoded = _encode_prompts(model, tokenizer, prompts, max_new_tokens)
    total = len(encoded)
    stop_ids = eos_token_ids(model, tokenizer)
    if not stop_ids:
        logger.warning(
            "Neither the model nor the tokenizer has an EOS token; every answer "
            "runs to max_new_tokens=%d",
            max_new_tokens,
        )

    options: dict[str, object] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": do_sample,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": stop_ids or None,
        "return_dict_in_generate": True,
        "output_logits": True,
    }
    if do_sample:
        options.update(temperature=temperature, top_p=top_p, top_k=top_k)

    answers: list[GeneratedAnswer | None] = [None] * total
    # Longest prompts first, so the first batch shows early whether memory suffices.
    order = sorted(range(total), key=lambda row: -len(encoded[row]))
    device = model_device(model)
    done = 0

    with eval_mode(model), torch.inference_mode(), _seeded(seed, device):
        for start in range(0, total, batch_size):
            if should_stop is not None and should_stop():
                logger.info("Generation cancelled after %d of %d prompts", done, total)
                raise InferenceCancelledError(done, total)

            rows = order[start : start + batch_size]
            input_ids, attention_mask = left_pad(
                [encoded[row] for row in rows], tokenizer.pad_token_id, device
            )
            # NOTE: output_logits keeps [batch, vocab] float logits per step
            # until the batch is done (about 100 MB for 8 x 64 x 49152 float32).
            output = model.generate(input_ids=input_ids, attention_mask=attention_mask, **options)
            new_tokens = output.sequences[:, input_ids.shape[1] :]

            for batch_row, row in enumerate(rows):
                row_logits = torch.stack([step[batch_row] for step in output.logits])
                answers[row] = _answer_of_row(
                    tokenizer,
                    prompt=prompts[row],
                    prompt_length=len(encoded[row]),
                    new_tokens=new_tokens[batch_row],
                    logits=row_logits,
                    stop_ids=stop_ids,
                )

            done += len(rows)
            if progress is not None:
                progress(done, total)

    return [answer for answer in answers if answer is not None]


def _answer_of_row(
    tokenizer: PreTrainedTokenizerBase,
    *,
    prompt: str,
    prompt_length: int,
    new_tokens: torch.Tensor,
    logits: torch.Tensor,
    stop_ids: list[int],
) -> GeneratedAnswer:
    """Cut one row of a generated batch at its first EOS and score its tokens."""
    steps = min(new_tokens.shape[0], logits.shape[0])
    token_ids = new_tokens[:steps].tolist()
    length, finish_reason = steps, "length"
    for index, token_id in enumerate(token_ids):
        if token_id in stop_ids:
            length, finish_reason = index, "eos"
            break

    answer_ids = torch.as_tensor(token_ids[:length], dtype=torch.long)
    logprobs, entropies, ranks = token_statistics(logits[:length], answer_ids)
    pieces, offsets = decode_token_pieces(tokenizer, token_ids[:length])
    return GeneratedAnswer(
        prompt=prompt,
        text="".join(pieces),
        token_ids=answer_ids.numpy(),
        tokens=pieces,
        offsets=offsets,
        logprobs=logprobs,
        entropies=entropies,
        ranks=ranks,
        vocab_size=int(logits.shape[-1]),
        prompt_length=prompt_length,
        finish_reason=finish_reason,
    )
