"""Tests of prompt building and batched generation with per-token log-probs."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from halluscope.inference import (
    GeneratedAnswer,
    InferenceCancelledError,
    build_messages,
    decode_token_pieces,
    encode_prompt,
    generate_answers,
    render_prompt,
    score_responses,
)
from halluscope.models import load_tokenizer

CONTEXT = "The bridge has 12 arches."
QUESTION = "How many arches does the bridge have?"

# A random model whose next-token distribution is far from uniform, so a wrong
# position id or a padding leak changes the log-probs by much more than the
# comparison tolerance.
INIT_RANGE = 0.3
LOGPROB_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def chat_tokenizer():
    """The real SmolLM2 tokenizer, with its chat template."""
    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def plain_tokenizer(chat_tokenizer):
    """The SmolLM2 byte-level BPE tokenizer without a chat template, like GPT-2's."""
    tokenizer = copy.deepcopy(chat_tokenizer)
    tokenizer.chat_template = None
    return tokenizer


def _tiny_llama(vocab_size: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        initializer_range=INIT_RANGE,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    return LlamaForCausalLM(config).eval()


def _tiny_gpt2(vocab_size: int) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=128,
        initializer_range=INIT_RANGE,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module")
def tiny_llama(chat_tokenizer):
    return _tiny_llama(len(chat_tokenizer))


@pytest.fixture(scope="module")
def tiny_gpt2(plain_tokenizer):
    return _tiny_gpt2(len(plain_tokenizer))


@pytest.fixture(params=["llama", "gpt2"])
def model_and_tokenizer(request, tiny_llama, tiny_gpt2, chat_tokenizer, plain_tokenizer):
    """A tiny Llama with the chat template, or a tiny GPT-2 with plain prompts."""
    if request.param == "llama":
        return tiny_llama, chat_tokenizer
    return tiny_gpt2, plain_tokenizer


def _prompts(tokenizer) -> list[str]:
    return [
        render_prompt(tokenizer, QUESTION, CONTEXT),
        render_prompt(tokenizer, "Why?"),
        render_prompt(tokenizer, "Which river does it cross?", CONTEXT + " It spans the Tay."),
    ]


def _llama_style_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer that adds a BOS, with a chat template that also emits one."""
    words = ["<unk>", "<s>", "</s>", "<pad>", "[", "]", "user", "assistant", "Context", ":"]
    words += ["Question", "?", ".", "The", "bridge", "has", "12", "arches", "How", "many"]
    backend = Tokenizer(
        models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="<unk>")
    )
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    tokenizer.chat_template = (
        "{{ bos_token }}{% for message in messages %}[{{ message['role'] }}] "
        "{{ message['content'] }} {% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    return tokenizer


# --- prompts -----------------------------------------------------------------


def test_build_messages_with_context():
    messages = build_messages(QUESTION, CONTEXT, system="Be brief.")

    assert [message["role"] for message in messages] == ["system", "user"]
    assert messages[0]["content"] == "Be brief."
    assert messages[1]["content"] == f"Context: {CONTEXT}\n\nQuestion: {QUESTION}"


def test_build_messages_without_context():
    messages = build_messages(QUESTION)

    assert messages == [{"role": "user", "content": QUESTION}]


def test_build_messages_rejects_empty_question():
    with pytest.raises(ValueError, match="question is empty"):
        build_messages("  ", CONTEXT)


def test_render_prompt_adds_generation_prompt_once(chat_tokenizer):
    prompt = render_prompt(chat_tokenizer, QUESTION, CONTEXT)

    assert prompt.endswith("<|im_start|>assistant\n")
    assert prompt.count("<|im_start|>assistant") == 1
    assert f"Context: {CONTEXT}\n\nQuestion: {QUESTION}" in prompt


def test_smollm2_prompt_adds_no_bos(chat_tokenizer):
    # SmolLM2's BOS is <|im_start|>, which its template writes before every
    # message, so a correct encoding has exactly one per message header.
    prompt = render_prompt(chat_tokenizer, QUESTION, CONTEXT)
    ids = encode_prompt(chat_tokenizer, prompt)
    reference = chat_tokenizer.apply_chat_template(
        build_messages(QUESTION, CONTEXT), tokenize=True, add_generation_prompt=True
    )
    reference_ids = list(reference["input_ids"]) if "input_ids" in reference else list(reference)
    bos_id = chat_tokenizer.bos_token_id

    assert chat_tokenizer.bos_token == "<|im_start|>"
    assert ids == reference_ids
    assert ids.count(bos_id) == prompt.count("<|im_start|>")
    assert ids[0] == bos_id
    assert ids[1] != bos_id


def test_llama_template_prompt_has_one_bos():
    tokenizer = _llama_style_tokenizer()
    prompt = render_prompt(tokenizer, "How many arches?", CONTEXT)
    bos_id = tokenizer.bos_token_id

    naive_ids = tokenizer(prompt)["input_ids"]
    ids = encode_prompt(tokenizer, prompt)

    assert naive_ids.count(bos_id) == 2  # what encode_prompt must avoid
    assert ids.count(bos_id) == 1
    assert ids[0] == bos_id


def test_plain_prompt_without_template(plain_tokenizer):
    prompt = render_prompt(plain_tokenizer, QUESTION, CONTEXT)

    assert prompt == f"Context: {CONTEXT}\nQuestion: {QUESTION}\nAnswer:"


def test_plain_prompt_without_context(plain_tokenizer):
    assert render_prompt(plain_tokenizer, QUESTION) == f"Question: {QUESTION}\nAnswer:"


# --- generation ----------------------------------------------------------------


def test_batched_matches_unbatched(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = _prompts(tokenizer)
    lengths = {len(encode_prompt(tokenizer, prompt)) for prompt in prompts}

    batched = generate_answers(model, tokenizer, prompts, max_new_tokens=8, batch_size=3)
    single = [
        generate_answers(model, tokenizer, [prompt], max_new_tokens=8)[0] for prompt in prompts
    ]

    assert len(lengths) == 3  # every row of the batch is padded differently
    for row, (together, alone) in enumerate(zip(batched, single, strict=True)):
        assert together.prompt == prompts[row]
        assert together.token_ids.tolist() == alone.token_ids.tolist()
        np.testing.assert_allclose(together.logprobs, alone.logprobs, atol=LOGPROB_TOLERANCE)
        np.testing.assert_allclose(together.entropies, alone.entropies, atol=LOGPROB_TOLERANCE)
        # The comparison is only meaningful for a model far from uniform.
        assert together.logprobs.max() > -math.log(together.vocab_size) + 2


def test_greedy_tokens_have_rank_zero(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer

    answers = generate_answers(model, tokenizer, _prompts(tokenizer), max_new_tokens=6)

    for answer in answers:
        assert len(answer) > 0
        assert answer.ranks.tolist() == [0] * len(answer)
        assert np.all(answer.logprobs <= 0)


def test_answer_fields_are_consistent(tiny_llama, chat_tokenizer):
    prompt = _prompts(chat_tokenizer)[0]

    [answer] = generate_answers(tiny_llama, chat_tokenizer, [prompt], max_new_tokens=6)

    assert isinstance(answer, GeneratedAnswer)
    assert answer.finish_reason == "length"
    assert len(answer) == 6
    assert "".join(answer.tokens) == answer.text
    assert answer.prompt_length == len(encode_prompt(chat_tokenizer, prompt))
    assert answer.vocab_size == len(chat_tokenizer)


def test_sampling_logprobs_come_from_raw_logits(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = _prompts(tokenizer)

    answers = generate_answers(
        model, tokenizer, prompts, max_new_tokens=8, do_sample=True, top_k=5, top_p=0.9, seed=3
    )
    rescored = score_responses(model, tokenizer, prompts, [a.token_ids for a in answers])

    for answer, reference in zip(answers, rescored, strict=True):
        assert np.all(np.isfinite(answer.logprobs))
        assert np.all(np.isfinite(answer.entropies))
        assert answer.ranks.max() < 5  # top-k kept only the 5 best raw logits
        np.testing.assert_allclose(answer.logprobs, reference.logprobs, atol=LOGPROB_TOLERANCE)
        np.testing.assert_allclose(answer.entropies, reference.entropies, atol=LOGPROB_TOLERANCE)


def test_sampling_differs_from_greedy(tiny_llama, chat_tokenizer):
    prompts = _prompts(chat_tokenizer)
    greedy = generate_answers(tiny_llama, chat_tokenizer, prompts, max_new_tokens=8)

    sampled = generate_answers(
        tiny_llama, chat_tokenizer, prompts, max_new_tokens=8, do_sample=True, seed=0
    )

    assert any(np.any(answer.ranks > 0) for answer in sampled)
    assert [a.token_ids.tolist() for a in sampled] != [a.token_ids.tolist() for a in greedy]


def test_seed_repeats_sampling(tiny_llama, chat_tokenizer):
    prompts = _prompts(chat_tokenizer)
    state_before = torch.random.get_rng_state()

    first = generate_answers(
        tiny_llama, chat_tokenizer, prompts, max_new_tokens=8, do_sample=True, seed=7
    )
    second = generate_answers(
        tiny_llama, chat_tokenizer, prompts, max_new_tokens=8, do_sample=True, seed=7
    )

    assert [a.token_ids.tolist() for a in first] == [a.token_ids.tolist() for a in second]
    assert torch.equal(torch.random.get_rng_state(), state_before)


def test_eos_stops_answer(tiny_llama, chat_tokenizer):
    prompt = _prompts(chat_tokenizer)[0]
    [free] = generate_answers(tiny_llama, chat_tokenizer, [prompt], max_new_tokens=8)
    ids = free.token_ids.tolist()
    stop_at = next(i for i in range(1, len(ids)) if ids[i] not in ids[:i])
    model = copy.deepcopy(tiny_llama)
    model.generation_config.eos_token_id = ids[stop_at]

    # A second, shorter row keeps generating after the first one stopped.
    answers = generate_answers(model, chat_tokenizer, [prompt, "Hi"], max_new_tokens=8)
    stopped = answers[0]

    assert stopped.finish_reason == "eos"
    assert stopped.token_ids.tolist() == ids[:stop_at]
    np.testing.assert_allclose(stopped.logprobs, free.logprobs[:stop_at], atol=LOGPROB_TOLERANCE)


def test_padding_side_left_unchanged(tiny_llama, chat_tokenizer):
    chat_tokenizer.padding_side = "right"

    generate_answers(tiny_llama, chat_tokenizer, _prompts(chat_tokenizer), max_new_tokens=2)

    assert chat_tokenizer.padding_side == "right"


def test_progress_reports_batches(tiny_llama, chat_tokenizer):
    calls = []

    generate_answers(
        tiny_llama,
        chat_tokenizer,
        _prompts(chat_tokenizer),
        max_new_tokens=2,
        batch_size=2,
        progress=lambda done, total: calls.append((done, total)),
    )

    assert calls == [(2, 3), (3, 3)]


def test_should_stop_cancels(tiny_llama, chat_tokenizer):
    with pytest.raises(InferenceCancelledError, match="after 0 of 3 rows"):
        generate_answers(
            tiny_llama, chat_tokenizer, _prompts(chat_tokenizer), should_stop=lambda: True
        )


def test_prompt_too_long_rejected(tiny_gpt2, plain_tokenizer):
    long_prompt = render_prompt(plain_tokenizer, QUESTION, CONTEXT * 20)

    with pytest.raises(ValueError, match="prompts row 1: .* exceed the model's limit of 128"):
        generate_answers(tiny_gpt2, plain_tokenizer, ["Hi", long_prompt], max_new_tokens=8)


def test_bad_top_p_rejected(tiny_llama, chat_tokenizer):
    with pytest.raises(ValueError, match="top_p must lie in"):
        generate_answers(tiny_llama, chat_tokenizer, ["Hi"], do_sample=True, top_p=0.0)


def test_single_string_prompts_rejected(tiny_llama, chat_tokenizer):
    with pytest.raises(TypeError, match="not one string"):
        generate_answers(tiny_llama, chat_tokenizer, "Hi")


# --- token pieces and the result type -------------------------------------------


def test_decode_pieces_share_emoji_span(chat_tokenizer):
    text = "Paris 🎉 東京"
    ids = chat_tokenizer(text, add_special_tokens=False)["input_ids"]

    pieces, offsets = decode_token_pieces(chat_tokenizer, ids)

    assert "".join(pieces) == text
    emoji_tokens = [i for i, (start, end) in enumerate(offsets) if start <= 6 < end]
    assert len(emoji_tokens) > 1  # the emoji is split into several byte tokens
    assert {tuple(offsets[i]) for i in emoji_tokens} == {tuple(offsets[emoji_tokens[0]])}
    assert [pieces[i] for i in emoji_tokens][:-1] == [""] * (len(emoji_tokens) - 1)
    assert "🎉" in pieces[emoji_tokens[-1]]


def _answer(**changes) -> GeneratedAnswer:
    fields = {
        "prompt": "Q",
        "text": "ab",
        "token_ids": [5, 6],
        "tokens": ("a", "b"),
        "offsets": [[0, 1], [1, 2]],
        "logprobs": [-0.5, -1.0],
        "entropies": [1.0, 2.0],
        "ranks": [0, 3],
        "vocab_size": 100,
        "prompt_length": 4,
        "finish_reason": "eos",
    }
    fields.update(changes)
    return GeneratedAnswer(**fields)


def test_answer_accepts_valid_fields():
    answer = _answer()

    assert len(answer) == 2
    np.testing.assert_allclose(answer.probabilities, np.exp([-0.5, -1.0]), rtol=1e-6)
    assert answer.token_records()[1]["rank"] == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"logprobs": [-0.5]}, "logprobs must have shape"),
        ({"logprobs": [-0.5, 0.2]}, "logprobs must be finite and <= 0"),
        ({"entropies": [1.0, 9.0]}, "entropies must be finite"),
        ({"ranks": [0, 100]}, "ranks must lie in"),
        ({"offsets": [[0, 1], [1, 3]]}, "offsets must satisfy"),
        ({"tokens": ("a", "c")}, "do not join to the text"),
        ({"finish_reason": "stop"}, "finish_reason must be one of"),
    ],
)
def test_answer_rejects_bad_fields(changes, message):
    with pytest.raises(ValueError, match=message):
        _answer(**changes)
