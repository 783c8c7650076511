"""Tests of causal LM fine-tuning on a tiny random Llama with the SmolLM2 tokenizer."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaForCausalLM

from halluscope.inference import render_prompt
from halluscope.models import load_tokenizer
from halluscope.runs import RunStore
from halluscope.training import (
    IGNORE_INDEX,
    CausalLMTrainConfig,
    CompletionCollator,
    completion_token_nll,
    encode_example,
    load_generation_split,
    load_run_causal_lm,
    run_causal_lm_training,
    save_run_model,
)

END_OF_TURN = "<|im_end|>"
COLOURS = ("red", "blue", "green", "black", "white")


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2-135m")


@pytest.fixture
def colour_qa(tmp_path):
    """40 rows whose answer is the colour named in the context."""
    rows = []
    for i in range(40):
        colour = COLOURS[i % len(COLOURS)]
        rows.append(
            {
                "context": f"Object {i} sits on shelf {i % 7}. Object {i} is {colour}.",
                "question": f"What colour is object {i}?",
                "answer": colour,
            }
        )
    path = tmp_path / "colours.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    return path


def make_config(model_folder, data_path, **overrides) -> CausalLMTrainConfig:
    settings = {
        "model": str(model_folder),
        "data_path": str(data_path),
        "prompt_column": "question",
        "answer_column": "answer",
        "context_column": "context",
        "epochs": 2.0,
        "batch_size": 8,
        "max_length": 96,
        "learning_rate": 5e-3,
        **overrides,
    }
    return CausalLMTrainConfig(**settings)


def start_run(home, config) -> tuple[RunStore, str]:
    store = RunStore(home)
    record = store.create_run(
        kind=config.kind, model=config.model, data=config.data_path, config=config.to_dict()
    )
    return store, record.run_id


def base_logits(model_folder, input_ids) -> torch.Tensor:
    model = LlamaForCausalLM.from_pretrained(model_folder, attn_implementation="eager")
    with torch.no_grad():
        return model(input_ids=input_ids).logits


# Settings


def test_config_learning_rate_default_per_method():
    lora = CausalLMTrainConfig("m", "d.csv", "question", "answer")
    full = CausalLMTrainConfig("m", "d.csv", "question", "answer", method="full")

    assert lora.learning_rate == 5e-4
    assert full.learning_rate == 3e-5


def test_config_dict_round_trip():
    config = CausalLMTrainConfig(
        "m", "d.csv", "question", "answer", context_column="context", lora_rank=4
    )

    values = json.loads(json.dumps(config.to_dict()))
    restored = CausalLMTrainConfig.from_dict(values)

    assert restored == config
    assert values["kind"] == "generation"
    assert values["lora_target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"method": "qlora"}, "method must be one of lora, full"),
        ({"validation_fraction": 0.0}, "validation_fraction"),
        ({"lora_target_modules": ()}, "lora_target_modules"),
        ({"merge": True, "method": "full"}, "merge applies to method 'lora' only"),
        ({"context_column": "question"}, "distinct columns"),
        ({"max_length": 8}, "max_length"),
    ],
)
def test_config_rejects_invalid(overrides, fragment):
    settings = {"prompt_column": "question", "answer_column": "answer", **overrides}

    with pytest.raises(ValueError, match=fragment):
        CausalLMTrainConfig("m", "d.csv", **settings)


# Encoding and batches


def test_collator_masks_prompt_and_padding(tokenizer):
    rows = [
        ("What colour is the car?", "red", "The car is red."),
        (
            "Who built the bridge?",
            "Maria Lindqvist",
            "The bridge was built in 1890 by Maria Lindqvist.",
        ),
    ]
    examples = [encode_example(tokenizer, q, a, c, max_length=128) for q, a, c in rows]
    collator = CompletionCollator(tokenizer.pad_token_id)

    batch = collator([{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in examples])

    longest = max(len(e.input_ids) for e in examples)
    assert batch["input_ids"].shape == (2, longest)
    for row, (example, (question, answer, context)) in enumerate(zip(examples, rows, strict=True)):
        length = len(example.input_ids)
        labels = batch["labels"][row]
        prompt_part = labels[: example.prompt_length]
        answer_part = labels[example.prompt_length : length]
        padding_part = labels[length:]
        assert (prompt_part == IGNORE_INDEX).all()
        assert (padding_part == IGNORE_INDEX).all()
        assert (answer_part != IGNORE_INDEX).all()
        assert (batch["input_ids"][row, length:] == tokenizer.pad_token_id).all()
        assert batch["attention_mask"][row].sum().item() == length
        assert tokenizer.decode(answer_part) == answer + END_OF_TURN

        # The chat template writes every BOS token itself; tokenizing adds none.
        ids = batch["input_ids"][row, :length].tolist()
        rendered = render_prompt(tokenizer, question, context)
        assert ids[0] == tokenizer.bos_token_id
        assert ids[1] != tokenizer.bos_token_id
        assert ids.count(tokenizer.bos_token_id) == rendered.count(tokenizer.bos_token)


def test_encode_truncates_context_from_left(tokenizer):
    context = " ".join(f"fact{i}." for i in range(200))
    answer = "The answer is fact199."

    example = encode_example(tokenizer, "Which fact is last?", answer, context, max_length=80)

    assert example is not None
    assert example.context_truncated
    assert len(example.input_ids) <= 80
    assert len(example.input_ids) >= 75
    prompt_text = tokenizer.decode(example.input_ids[: example.prompt_length])
    assert "fact199." in prompt_text
    assert "fact0." not in prompt_text
    assert "Which fact is last?" in prompt_text
    answer_ids = [t for t in example.labels if t != IGNORE_INDEX]
    assert tokenizer.decode(answer_ids) == answer + END_OF_TURN


def test_encode_returns_none_when_answer_too_long(tokenizer):
    answer = " ".join(["word"] * 200)

    example = encode_example(tokenizer, "Say it.", answer, "Short context.", max_length=64)

    assert example is None


def test_completion_nll_matches_full_logits(tiny_llama_dir, tokenizer):
    model = LlamaForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="eager")
    examples = [
        encode_example(tokenizer, "What colour?", "red", "It is red.", 64),
        encode_example(tokenizer, "Who?", "Ann Berg", "Ann Berg wrote it in 1901.", 64),
    ]
    batch = CompletionCollator(tokenizer.pad_token_id)(
        [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in examples]
    )

    with torch.no_grad():
        nll_sum, count = completion_token_nll(model, batch)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        batch["labels"][:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )

    answer_tokens = sum(sum(t != IGNORE_INDEX for t in e.labels) for e in examples)
    assert count.item() == answer_tokens
    torch.testing.assert_close(nll_sum, expected, rtol=1e-5, atol=1e-4)


# Saving and loading


def test_adapter_round_trip_logits(tiny_llama_dir, tokenizer, tmp_path):
    torch.manual_seed(1)
    base = LlamaForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="eager")
    model = get_peft_model(
        base, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj"])
    )
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.5)
    model.eval()
    input_ids = torch.tensor([tokenizer("The car is red.")["input_ids"]])
    with torch.no_grad():
        before = model(input_ids=input_ids).logits
    config = make_config(tiny_llama_dir, "d.csv", lora_rank=4, lora_target_modules=("q_proj",))

    save_run_model(model, tokenizer, tmp_path, config, str(tiny_llama_dir))
    reloaded, reloaded_tokenizer = load_run_causal_lm(tmp_path, device=torch.device("cpu"))
    merged, _ = load_run_causal_lm(tmp_path, device=torch.device("cpu"), merge_adapter=True)
    with torch.no_grad():
        after = reloaded(input_ids=input_ids).logits
        after_merge = merged(input_ids=input_ids).logits

    assert (tmp_path / "model" / "adapter_model.safetensors").is_file()
    assert json.loads((tmp_path / "model" / "base_model.json").read_text())["method"] == "lora"
    assert reloaded_tokenizer.chat_template == tokenizer.chat_template
    assert not torch.allclose(before, base_logits(tiny_llama_dir, input_ids))
    assert torch.equal(after, before)
    torch.testing.assert_close(after_merge, before, rtol=1e-5, atol=1e-5)


def test_merged_save_writes_full_weights(tiny_llama_dir, tokenizer, tmp_path):
    base = LlamaForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="eager")
    model = get_peft_model(
        base, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["v_proj"])
    )
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.5)
    model.eval()
    input_ids = torch.tensor([tokenizer("Ann Berg wrote it.")["input_ids"]])
    with torch.no_grad():
        before = model(input_ids=input_ids).logits
    config = make_config(tiny_llama_dir, "d.csv", merge=True, lora_target_modules=("v_proj",))

    save_run_model(model, tokenizer, tmp_path, config, str(tiny_llama_dir))
    reloaded, _ = load_run_causal_lm(tmp_path, device=torch.device("cpu"))
    with torch.no_grad():
        after = reloaded(input_ids=input_ids).logits

    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "model" / "adapter_config.json").exists()
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


# Runs through the run store


def test_lora_run_completes(tiny_llama_dir, colour_qa, tmp_path, tokenizer):
    config = make_config(tiny_llama_dir, colour_qa)
    store, run_id = start_run(tmp_path / "home", config)

    metrics = run_causal_lm_training(store, run_id, config)

    record = store.get(run_id)
    run_dir = store.run_dir(run_id)
    assert record.status == "completed"
    assert record.metrics["eval_loss"] == metrics["eval_loss"]
    assert math.isfinite(metrics["eval_loss"])
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))
    assert metrics["train_rows"] == 32
    assert metrics["validation_rows"] == 8
    assert metrics["steps"] == 8
    assert 0 < metrics["trainable_parameters"] < 10_000

    event_types = {event["type"] for event in store.read_events(run_id)}
    assert {"data", "model", "train_begin", "train_step", "eval", "metrics"} <= event_types
    history = store.read_json(run_id, "history.json")
    assert [entry["epoch"] for entry in history] == [1.0, 2.0]
    assert all(math.isfinite(entry["train_loss"]) for entry in history)

    validation = load_generation_split(run_dir)
    assert len(validation) == 8
    assert all(answer in COLOURS for answer in validation.answers)
    assert all(1 <= row <= 40 for row in validation.row_numbers)
    assert not (run_dir / "checkpoints").exists()

    model, _ = load_run_causal_lm(run_dir, device=torch.device("cpu"))
    input_ids = torch.tensor([tokenizer("Object 3 is red.")["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits
    assert torch.isfinite(logits).all()
    assert not torch.allclose(logits, base_logits(tiny_llama_dir, input_ids))


def test_full_run_learns_answers(tiny_llama_dir, colour_qa, tmp_path):
    config = make_config(tiny_llama_dir, colour_qa, method="full", epochs=3.0, learning_rate=1e-2)
    store, run_id = start_run(tmp_path / "home", config)

    metrics = run_causal_lm_training(store, run_id, config)

    run_dir = store.run_dir(run_id)
    history = store.read_json(run_id, "history.json")
    assert store.get(run_id).status == "completed"
    assert (run_dir / "model" / "model.safetensors").is_file()
    assert json.loads((run_dir / "model" / "base_model.json").read_text())["method"] == "full"
    assert metrics["best_epoch"] == 3.0
    assert metrics["eval_loss"] < history[0]["eval_loss"] - 1.0
    model, _ = load_run_causal_lm(run_dir, device=torch.device("cpu"))
    assert isinstance(model, LlamaForCausalLM)


def test_run_skips_blank_and_too_long_rows(tiny_llama_dir, tmp_path):
    rows = [
        {"question": f"Colour of item {i}?", "answer": COLOURS[i % 5], "context": f"Item {i}."}
        for i in range(12)
    ]
    rows[2]["answer"] = ""
    rows[5]["answer"] = " ".join(["long"] * 150)
    path = tmp_path / "rows.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    config = make_config(tiny_llama_dir, path, max_steps=1)
    store, run_id = start_run(tmp_path / "home", config)

    metrics = run_causal_lm_training(store, run_id, config)

    warnings = [e["message"] for e in store.read_events(run_id) if e["type"] == "warning"]
    split = json.loads((store.run_dir(run_id) / "generation_split.json").read_text())
    assert metrics["dropped_rows"] == 2
    assert any("row 3" in message and "empty" in message for message in warnings)
    assert any("row 6" in message and "max_length=96" in message for message in warnings)
    assert split["dropped_row_numbers"] == [3, 6]
    assert metrics["train_rows"] + metrics["validation_rows"] == 10


def test_cancel_requested_stops_run(tiny_llama_dir, colour_qa, tmp_path, monkeypatch):
    config = make_config(tiny_llama_dir, colour_qa, epochs=3.0)
    store, run_id = start_run(tmp_path / "home", config)
    original = RunStore.cancel_requested

    def cancel_after_first_step(self, run_id):
        started = any(e["type"] == "train_begin" for e in self.read_events(run_id))
        return started or original(self, run_id)

    monkeypatch.setattr(RunStore, "cancel_requested", cancel_after_first_step)

    metrics = run_causal_lm_training(store, run_id, config)

    record = store.get(run_id)
    event_types = [event["type"] for event in store.read_events(run_id)]
    assert metrics == {}
    assert record.status == "cancelled"
    assert "eval" not in event_types
    assert not (store.run_dir(run_id) / "model").exists()


def test_missing_answer_column_fails_run(tiny_llama_dir, colour_qa, tmp_path):
    config = make_config(tiny_llama_dir, colour_qa, answer_column="reply")
    store, run_id = start_run(tmp_path / "home", config)

    with pytest.raises(Exception, match="reply"):
        run_causal_lm_training(store, run_id, config)

    record = store.get(run_id)
    assert record.status == "failed"
    assert "reply" in record.message
    assert "colours.jsonl" in record.message


@pytest.mark.integration
def test_smollm2_lora_run_reloads(tmp_path):
    from halluscope.demo import demo_path

    frame = pd.read_json(demo_path("qa.jsonl"), lines=True).head(24)
    path = tmp_path / "qa24.jsonl"
    frame.to_json(path, orient="records", lines=True)
    config = CausalLMTrainConfig(
        model="smollm2-135m",
        data_path=str(path),
        prompt_column="question",
        answer_column="answer",
        context_column="context",
        validation_fraction=0.25,
        max_steps=2,
    )
    store, run_id = start_run(tmp_path / "home", config)

    metrics = run_causal_lm_training(store, run_id, config)

    run_dir = store.run_dir(run_id)
    model, tokenizer = load_run_causal_lm(run_dir, device=torch.device("cpu"))
    split = load_generation_split(run_dir)
    examples = [
        encode_example(tokenizer, prompt, answer, context, config.max_length)
        for prompt, answer, context in zip(
            split.prompts, split.answers, split.contexts, strict=True
        )
    ]
    batch = CompletionCollator(tokenizer.pad_token_id)(
        [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in examples]
    )
    with torch.no_grad():
        nll_sum, count = completion_token_nll(model, batch)

    assert store.get(run_id).status == "completed"
    assert metrics["steps"] == 2
    assert len(split) == 6
    assert tokenizer.bos_token == "<|im_start|>"
    # Training used SDPA attention and the reload uses eager attention, so the
    # losses agree up to float rounding.
    assert (nll_sum / count).item() == pytest.approx(metrics["eval_loss"], abs=1e-3)
