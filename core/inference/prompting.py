"""Build the prompt that asks a causal LM to answer a question about a context.

Instruction-tuned models get their chat template, rendered once with the
generation prompt (the assistant header) at the end. Models without a chat
template, such as GPT-2, get a plain completion prompt::

    Context: <context>
    Question: <question>
    Answer:

A rendered chat template already contains every special token the model
expects, so ``encode_prompt`` tokenizes it with ``add_special_tokens=False``.
Tokenizing it with the default ``True`` would put a second BOS in front of
the one that templates such as Llama 3's emit.
"""

from __future__ import annotations

import logging

from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

#: A system prompt that asks for answers grounded in the context. Its refusal
#: sentence matches the answer of unanswerable rows in the demo QA set.
GROUNDED_SYSTEM_PROMPT = (
    "Answer the question using only the context. If the context does not contain "
    "the answer, reply: The context does not say."
)


def has_chat_template(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Return whether the tokenizer carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def _user_content(question: str, context: str | None) -> str:
    if context is None:
        return question
    return f"Context: {context}\n\nQuestion: {question}"


def _check_text(name: str, value: object, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}: {value!r:.80}.")
    if name == "question" and not value.strip():
        raise ValueError("question is empty; pass the question or instruction to answer.")


def build_messages(
    question: str, context: str | None = None, system: str | None = None
) -> list[dict[str, str]]:
    """Build the chat messages that ask ``question`` about ``context``.

    Args:
        question: the question or instruction, for example
            "Summarise the article in one sentence.".
        context: the grounding text (passage, article, knowledge), or None.
        system: a system message, or None to leave the template's default
            (SmolLM2's template then inserts its own system message).

    Returns:
        A system message (when ``system`` is given) and one user message whose
        content is ``"Context: {context}\\n\\nQuestion: {question}"``, or just
        the question when there is no context.

    Raises:
        TypeError: an argument is not a string.
        ValueError: the question is empty.
    """
    _check_text("question", question, allow_none=False)
    _check_text("context", context, allow_none=True)
    _check_text("system", system, allow_none=True)

    messages = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": _user_content(question, context)})
    return messages


def render_plain_prompt(
    question: str, context: str | None = None, system: str | None = None
) -> str:
    """Render the completion prompt for models without a chat template.

    Returns:
        ``"Context: ...\\nQuestion: ...\\nAnswer:"``, without the context line
        when ``context`` is None, and with ``system`` and a blank line in front
        when given.
    """
    build_messages(question, context, system)  # validates the arguments

    lines = []
    if system is not None:
        lines.append(system)
        lines.append("")
    if context is not None:
        lines.append(f"Context: {context}")
    lines.append(f"Question: {question}")
    lines.append("Answer:")
    return "\n".join(lines)


def render_prompt(
    tokenizer: PreTrainedTokenizerBase,
    question: str,
    context: str | None = None,
    *,
    system: str | None = None,
) -> str:
    """Render the prompt text that asks ``question`` about ``context``.

    With a chat template, the messages of ``build_messages`` are rendered once
    with ``add_generation_prompt=True``, so the text ends with the assistant
    header and the model's next token starts the answer. Without a chat
    template, the plain ``render_plain_prompt`` text is returned.

    Tokenize the result with ``encode_prompt``, not ``tokenizer(text)``.
    """
    if not has_chat_template(tokenizer):
        return render_plain_prompt(question, context, system)

    messages = build_messages(question, context, system)
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(rendered, str):
        raise TypeError(
            f"The chat template of {type(tokenizer).__name__} rendered a "
            f"{type(rendered).__name__}, not a string."
        )
    return rendered


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    *,
    add_special_tokens: bool | None = None,
) -> list[int]:
    """Tokenize a prompt so that it contains exactly the special tokens it needs.

    Args:
        tokenizer: the model's tokenizer.
        prompt: text from ``render_prompt``, or any other prompt text.
        add_special_tokens: whether the tokenizer adds its special tokens (a
            BOS, for Llama tokenizers). None (the default) decides by the
            tokenizer: False when it has a chat template, because the rendered
            template already contains them, and True otherwise. Even when
            True, no BOS is added to a text that already starts with the BOS.

    Returns:
        The token ids of the prompt.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}: {prompt!r:.80}.")
    if add_special_tokens is None:
        add_special_tokens = not has_chat_template(tokenizer)

    bos = tokenizer.bos_token
    if add_special_tokens and isinstance(bos, str) and bos and prompt.startswith(bos):
        logger.debug("The prompt already starts with the BOS %r; adding no special tokens", bos)
        add_special_tokens = False

    return list(tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"])
