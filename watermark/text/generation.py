"""Embedding: the KGW logits processor and a batched generation helper for any causal LM.

:class:`KGWLogitsProcessor` adds ``delta`` to the logits of green tokens (soft watermark, Kirchenbauer
et al. 2023) for provguard's device-independent schemes; it plugs into ``model.generate(...,
logits_processor=LogitsProcessorList([...]))``. :func:`generate` drives a whole batch of prompts and
routes ``transformers-*`` schemes to transformers' own ``watermarking_config`` instead, so their
output is exactly what transformers would produce.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from provguard.watermark.text.schemes import GreenListScheme, ProvguardScheme, TransformersScheme


class KGWLogitsProcessor(LogitsProcessor):
    """Add ``delta`` to green-token logits: ``scores (B, V)`` -> ``scores + delta * green (B, V)``.

    The green list of each row comes from its last ``scheme.prev_len`` tokens of ``input_ids (B, L)``
    and is computed on the logits' device; rows shorter than that are left unchanged (as
    transformers does). Self-hash schemes are exact over the whole vocabulary (no top-k rejection).
    """

    def __init__(self, scheme: ProvguardScheme, delta: float = 2.0):
        if not isinstance(scheme, ProvguardScheme):
            raise TypeError("KGWLogitsProcessor takes a provguard-* scheme; for transformers-* schemes pass "
                            "scheme.watermarking_config(delta) to model.generate(watermarking_config=...)")
        self.scheme = scheme
        self.delta = float(delta)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        width = self.scheme.prev_len
        if input_ids.shape[-1] < width:
            return scores
        prev = input_ids[:, input_ids.shape[-1] - width:].to(scores.device)
        green = self.scheme.green_mask(prev, scores.shape[-1])
        return scores + self.delta * green.to(scores.dtype)


@dataclass
class Generation:
    """One generated continuation: ``text`` (decoded new tokens), ``token_ids`` (new tokens, EOS and
    padding cut) and ``prompt_ids`` (the tokens the model was conditioned on, chat template included)."""

    prompt: str
    text: str
    token_ids: list[int] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    prompt_text: str = ""


def _encode_prompts(tokenizer, prompts: Sequence[str], chat: bool) -> list[str]:
    if chat and getattr(tokenizer, "chat_template", None):
        return [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                              add_generation_prompt=True) for p in prompts]
    return list(prompts)


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[str], scheme: GreenListScheme | None = None, *,
             delta: float = 2.0, max_new_tokens: int = 200, batch_size: int = 8, do_sample: bool = True,
             temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
             chat: bool = True, min_new_tokens: int = 0) -> list[Generation]:
    """Generate from ``prompts`` in left-padded batches of ``batch_size``, watermarked with ``scheme``
    (None: no watermark). ``chat`` applies the tokenizer's chat template when it has one; ``seed``
    fixes the sampling RNG. Returns one :class:`Generation` per prompt, in order."""
    tokenizer.padding_side = "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stop_ids = {i for i in (tokenizer.eos_token_id, pad_id) if i is not None}
    if seed is not None:
        torch.manual_seed(seed)
    kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=pad_id,
                  min_new_tokens=min_new_tokens)
    if do_sample:
        kwargs.update(temperature=temperature, top_k=top_k, top_p=top_p)
    if isinstance(scheme, TransformersScheme):
        kwargs["watermarking_config"] = scheme.watermarking_config(delta)
    elif scheme is not None:
        kwargs["logits_processor"] = LogitsProcessorList([KGWLogitsProcessor(scheme, delta)])
    device = next(model.parameters()).device
    texts = _encode_prompts(tokenizer, prompts, chat)
    results: list[Generation] = []
    for lo in range(0, len(texts), batch_size):
        batch = tokenizer(texts[lo:lo + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(device)
        out = model.generate(**batch, **kwargs)
        width = batch["input_ids"].shape[1]
        for row, prompt, prompt_text, mask in zip(out, prompts[lo:lo + batch_size], texts[lo:lo + batch_size],
                                                  batch["attention_mask"]):
            new = row[width:].tolist()
            cut = next((i for i, t in enumerate(new) if t in stop_ids), len(new))
            prompt_ids = row[:width][mask.bool()].tolist()
            results.append(Generation(prompt, tokenizer.decode(new[:cut], skip_special_tokens=True),
                                      new[:cut], prompt_ids, prompt_text))
    return results
