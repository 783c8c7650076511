"""Log-probs of a response without its context, for pointwise mutual information with the source.

A token that the context supports is more likely with the context than
without it; a hallucinated token often is not. The pointwise mutual
information of a response token with the context is

    PMI(t) = log p(token_t | prompt with context, tokens < t)
           - log p(token_t | prompt without context, tokens < t),

as in van der Poel et al., "Mutual Information Alleviates Hallucinations in
Abstractive Summarization" (EMNLP 2022). The first term is the response's
own log-prob; this module computes the second with one extra forward pass
over the short prompt that ``context_free_prompt`` leaves.
"""

from __future__ import annotations

import inspect
import logging

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from halluscope.inference.generate import TokenScores, token_statistics
from halluscope.inference.prompting import encode_prompt
from halluscope.inference.runtime import eval_mode, model_device

logger = logging.getLogger(__name__)


def context_free_prompt(prompt: str, context: str | None) -> str:
    """Return ``prompt`` with the context and its "Context:" label taken out.

    ``render_prompt`` writes the context as ``"Context: {context}"`` followed
    by a blank line (chat templates) or a line break (plain prompts). The
    first of these forms found in ``prompt`` is removed; a prompt without the
    context comes back unchanged, with a warning.
    """
    if not context:
        return prompt
    for form in (f"Context: {context}\n\n", f"Context: {context}\n", context):
        if form in prompt:
            return prompt.replace(form, "", 1)
    logger.warning("The context was not found in the prompt; the prompt is kept whole.")
    return prompt


def context_free_logprobs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    response: TokenScores,
    context: str | None,
) -> np.ndarray:
    """Return the log-prob of each response token after the prompt without the context.

    The response keeps its own token ids, so the result lines up with
    ``response.logprobs`` token by token. Without a context the result is
    ``response.logprobs`` itself and the model does not run.

    Returns:
        float32 array [n_tokens] of natural log-probs.
    """
    if not context or len(response) == 0:
        return np.asarray(response.logprobs, dtype=np.float32)

    prompt_ids = encode_prompt(tokenizer, context_free_prompt(response.prompt, context))
    response_ids = [int(token) for token in response.token_ids]
    device = model_device(model)
    input_ids = torch.tensor([prompt_ids + response_ids], device=device)
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        inputs["logits_to_keep"] = len(response_ids) + 1

    with eval_mode(model), torch.inference_mode():
        logits = model(**inputs, use_cache=False).logits[0]
    # The last len(response) + 1 positions are kept; all but the last predict a response token.
    predicting = logits[-(len(response_ids) + 1) : -1]
    logprobs, _, _ = token_statistics(predicting, torch.tensor(response_ids, device=device))
    return logprobs
