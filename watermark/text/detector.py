"""Model-free, batched detection of green-list text watermarks: needs a tokenizer and the key only.

Per document: tokenise (after :mod:`normalisation <provguard.watermark.text.normalize>`), form the
n-grams whose scored token lies after the prompt, drop repeated n-grams (first occurrence kept; on by
default, as the KGW authors recommend), look every distinct n-gram of the whole batch up once, and
report the exact binomial tail. (Repeats are judged on what the green test depends on,
:meth:`GreenListScheme.repeat_key`, so the distinct scored tokens are independent under the null.) A windowed search then looks for a watermarked passage inside the
document (see :func:`provguard.watermark.text.stats.best_window`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from provguard.errors import BadArgument
from provguard.watermark.text.normalize import NormalizedText, identity_text, normalize_text
from provguard.watermark.text.schemes import GreenListScheme
from provguard.watermark.text.stats import best_window, binomial_p_value, z_score


@dataclass
class TextSpan:
    """Where the most significant window lies.

    ``start``/``end``: character offsets into the original text (None if the tokenizer gives no
    offsets); ``token_start``/``token_end``: indices into the text's tokens; ``p_value`` is corrected
    for the ``windows_searched`` windows.
    """

    start: int | None
    end: int | None
    token_start: int
    token_end: int
    tokens_scored: int
    green: int
    z: float
    p_value: float
    windows_searched: int


@dataclass
class TextDetection:
    """One document's verdict. ``detected``: whole-document ``p_value <= fpr``. ``span``: the best
    window when its corrected p-value is ``<= fpr``, else None. ``error``: why nothing was scored."""

    tokens_scored: int = 0
    green: int = 0
    z: float = math.nan
    p_value: float = 1.0
    detected: bool = False
    span: TextSpan | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Doc:
    tokens: np.ndarray            # (L,) int64: prompt tokens then text tokens
    first: int                    # index of the first text token
    offsets: np.ndarray | None    # (L - first, 2) character offsets of text tokens in the normalised text
    text: NormalizedText | None


class TextWatermarkDetector:
    """Detect a :class:`GreenListScheme` watermark in texts or token ids, batched.

    Args:
        tokenizer: a transformers tokenizer (fast tokenizers also give span character offsets).
        scheme: the green-list scheme and key (see :func:`create_scheme`).
        fpr: false-positive rate for ``detected`` (and for reporting a span).
        ignore_repeated_ngrams: score each distinct n-gram once.
        normalize: NFC, homoglyph and zero-width normalisation before tokenising.
        find_spans: run the windowed span search.
        min_span_tokens: smallest window (scored tokens) in the span search.
    """

    def __init__(self, tokenizer, scheme: GreenListScheme, *, fpr: float = 1e-3,
                 ignore_repeated_ngrams: bool = True, normalize: bool = True, find_spans: bool = True,
                 min_span_tokens: int = 25):
        if not 0.0 < fpr < 1.0:
            raise BadArgument(f"{{name}} must be in (0, 1), got {fpr}", "fpr")
        self.tokenizer = tokenizer
        self.scheme = scheme
        self.fpr = fpr
        self.ignore_repeated_ngrams = ignore_repeated_ngrams
        self.normalize = normalize
        self.find_spans = find_spans
        self.min_span_tokens = min_span_tokens

    # ---- inputs -------------------------------------------------------------------------------
    def _encode(self, texts: list[str]) -> tuple[list[list[int]], list[np.ndarray | None]]:
        if not texts:
            return [], []
        if getattr(self.tokenizer, "is_fast", False):
            enc = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
            offsets = [np.asarray(o, dtype=np.int64).reshape(-1, 2) for o in enc["offset_mapping"]]
            return list(enc["input_ids"]), offsets
        enc = self.tokenizer(texts, add_special_tokens=False)
        return list(enc["input_ids"]), [None] * len(texts)

    def _prepare(self, texts: Sequence[str], prompts: Sequence[str | None] | None) -> list[_Doc]:
        norm = normalize_text if self.normalize else identity_text
        texts_n = [norm(t) for t in texts]
        ids, offsets = self._encode([t.text for t in texts_n])
        prompts = list(prompts) if prompts is not None else [None] * len(texts_n)
        prompt_ids, _ = self._encode([norm(p).text for p in prompts if p])
        prompt_iter = iter(prompt_ids)
        docs = []
        for text, tok, off, prompt in zip(texts_n, ids, offsets, prompts):
            head = list(next(prompt_iter)) if prompt else []
            docs.append(_Doc(np.asarray(head + list(tok), dtype=np.int64), len(head), off, text))
        return docs

    # ---- public API ---------------------------------------------------------------------------
    def detect(self, texts: Sequence[str], prompts: Sequence[str | None] | None = None) -> list[TextDetection]:
        """Score texts: ``texts`` ``(B,)`` strings; ``prompts`` optional ``(B,)`` strings (or None)
        whose tokens serve as context only. Returns ``B`` :class:`TextDetection`."""
        if prompts is not None and len(prompts) != len(texts):
            raise ValueError("texts and prompts must have the same length")
        return self._score(self._prepare(texts, prompts))

    def score_ids(self, token_ids: Sequence[Sequence[int]],
                  prompt_ids: Sequence[Sequence[int]] | None = None) -> list[TextDetection]:
        """Score token ids directly (no tokenizer call): ``B`` sequences of text tokens, each optionally
        preceded, as context only, by its prompt tokens. Spans carry token indices, no characters."""
        prompt_ids = prompt_ids if prompt_ids is not None else [[]] * len(token_ids)
        docs = [_Doc(np.asarray(list(p) + list(t), dtype=np.int64), len(p), None, None)
                for t, p in zip(token_ids, prompt_ids)]
        return self._score(docs)

    # ---- scoring ------------------------------------------------------------------------------
    def _ngrams(self, doc: _Doc) -> tuple[np.ndarray, np.ndarray]:
        """Scored n-grams of one document: ``(positions (M,), ngrams (M, n))``, in text order."""
        n = self.scheme.ngram_len
        first = max(doc.first, n - 1)
        if len(doc.tokens) <= first:
            return np.zeros(0, dtype=np.int64), np.zeros((0, n), dtype=np.int64)
        positions = np.arange(first, len(doc.tokens))
        return positions, sliding_window_view(doc.tokens, n)[positions - n + 1]

    def _score(self, docs: list[_Doc]) -> list[TextDetection]:
        per_doc = [self._ngrams(d) for d in docs]
        doc_index = np.concatenate([np.full(len(p), i) for i, (p, _) in enumerate(per_doc)] or [np.zeros(0, int)])
        ngrams = np.concatenate([g for _, g in per_doc]) if per_doc else np.zeros((0, self.scheme.ngram_len))
        keep = np.ones(len(ngrams), dtype=bool)
        if self.ignore_repeated_ngrams and len(ngrams):
            keys = self.scheme.repeat_key(ngrams)
            _, first_seen = np.unique(np.column_stack([doc_index, keys]), axis=0, return_index=True)
            keep[:] = False
            keep[first_seen] = True
        green = np.zeros(len(ngrams), dtype=bool)
        if len(ngrams):
            distinct, inverse = np.unique(ngrams, axis=0, return_inverse=True)
            green = self.scheme.green_ngrams(distinct)[inverse.reshape(-1)]
        bounds = np.concatenate([[0], np.cumsum([len(p) for p, _ in per_doc])]).astype(int)
        return [self._result(doc, positions, keep[a:b], green[a:b])
                for doc, (positions, _), a, b in zip(docs, per_doc, bounds[:-1], bounds[1:])]

    def _result(self, doc: _Doc, positions: np.ndarray, keep: np.ndarray, green: np.ndarray) -> TextDetection:
        text_tokens = len(doc.tokens) - doc.first
        if text_tokens == 0:
            return TextDetection(error="empty text: no tokens to score")
        scored = int(keep.sum())
        if scored == 0:
            return TextDetection(error=f"too short to score: {text_tokens} token(s); scheme "
                                       f"{self.scheme.name} needs at least {self.scheme.ngram_len} "
                                       f"(context width {self.scheme.context_width})")
        hits = int(green[keep].sum())
        p = float(binomial_p_value(hits, scored, self.scheme.gamma))
        result = TextDetection(tokens_scored=scored, green=hits, z=float(z_score(hits, scored, self.scheme.gamma)),
                               p_value=p, detected=p <= self.fpr)
        if self.find_spans:
            result.span = self._span(doc, positions[keep], green[keep])
        return result

    def _span(self, doc: _Doc, positions: np.ndarray, green: np.ndarray) -> TextSpan | None:
        window = best_window(green, self.scheme.gamma, self.min_span_tokens)
        if window is None or window.p_value > self.fpr:
            return None
        tok_a = int(positions[window.start]) - doc.first
        tok_b = int(positions[window.end - 1]) - doc.first + 1
        start = end = None
        if doc.offsets is not None and doc.text is not None:
            start, end = doc.text.original_range(int(doc.offsets[tok_a, 0]), int(doc.offsets[tok_b - 1, 1]))
        return TextSpan(start=start, end=end, token_start=tok_a, token_end=tok_b, tokens_scored=window.tokens,
                        green=window.green, z=float(z_score(window.green, window.tokens, self.scheme.gamma)),
                        p_value=window.p_value, windows_searched=window.windows_searched)
