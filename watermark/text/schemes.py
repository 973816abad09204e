"""Green-list schemes: which tokens are "green" after a given context (Kirchenbauer et al. 2023).

Every scheme answers one batched question, :meth:`GreenListScheme.green_ngrams`: for n-grams
``(c_1, ..., c_{n-1}, t)`` is the last token ``t`` green? ``n = ngram_len`` is ``context_width + 1``
for left-hash schemes (the green list of ``t`` depends on the ``context_width`` tokens before it) and
``context_width`` for self-hash schemes (the window includes ``t`` itself), as in transformers'
``WatermarkDetector``.

Two families:

* ``provguard-lefthash`` / ``provguard-selfhash`` (:class:`ProvguardScheme`): device-independent
  and keyed by arbitrary secret bytes. ``t`` is green after context ``c`` iff
  ``uniform(H_key(c, t)) < gamma`` for a keyed 64-bit hash built from :mod:`provguard.watermark.prf`.
  No permutation of the vocabulary is ever materialised, so detection is a few integer operations
  per token. Under "not watermarked" every distinct (context, token) pair is green independently with
  probability exactly ``gamma``, so the green count of distinct n-grams is exactly binomial.
* ``transformers-lefthash`` / ``transformers-selfhash`` (:class:`TransformersScheme`): bit-exact
  replicas of transformers' ``WatermarkLogitsProcessor`` green lists as generated on a CPU
  (``torch.Generator`` seeded from the integer ``hashing_key`` times the context token(s)), so text
  from ``model.generate(watermarking_config=...)`` is detected with the tokenizer alone.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np
import torch

from provguard.errors import KeyMaterialError, ProvguardError
from provguard.keys import SecretKey, as_key
from provguard.watermark import prf
from provguard.watermark.text import hashing

PROVGUARD_SCHEMES = ("provguard-lefthash", "provguard-selfhash")
TRANSFORMERS_SCHEMES = ("transformers-lefthash", "transformers-selfhash")
DEFAULT_SCHEME = "provguard-lefthash"


def list_schemes() -> list[str]:
    """Names accepted by :func:`create_scheme` (and the CLI's ``--scheme``)."""
    return list(PROVGUARD_SCHEMES + TRANSFORMERS_SCHEMES)


class GreenListScheme(ABC):
    """A keyed rule that splits the vocabulary into green and red tokens for every context."""

    name: str

    def __init__(self, gamma: float, context_width: int, self_hash: bool):
        if not 0.0 < gamma < 1.0:
            raise ProvguardError(f"gamma (green-list fraction) must be in (0, 1), got {gamma}")
        if context_width < 1:
            raise ProvguardError(f"context width must be at least 1, got {context_width}")
        self.gamma = float(gamma)
        self.context_width = int(context_width)
        self.self_hash = bool(self_hash)

    @property
    def ngram_len(self) -> int:
        """Tokens per scored n-gram, the scored token last."""
        return self.context_width + (0 if self.self_hash else 1)

    @abstractmethod
    def green_ngrams(self, ngrams: np.ndarray) -> np.ndarray:
        """Whether the last token of each n-gram is green: ``(N, ngram_len)`` int64 -> ``(N,)`` bool."""

    def repeat_key(self, ngrams: np.ndarray) -> np.ndarray:
        """What the green test of each n-gram really depends on: ``(N, ngram_len)`` -> ``(N, k)`` int64.

        Two n-grams with equal keys are the same coin flip, so "ignore repeated n-grams" counts each key
        once; distinct keys are independent Bernoulli(gamma) under the null, which makes the binomial
        tail exact. Default: the whole n-gram.
        """
        return ngrams

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, gamma={self.gamma}, "
                f"context_width={self.context_width})")


class ProvguardScheme(GreenListScheme):
    """Hash-test green lists keyed by secret bytes; identical on every device.

    ``H`` folds the context into a 64-bit state with splitmix64 (left-hash: all ``context_width``
    previous tokens, in order; self-hash: the window token with the smallest keyed token hash, the
    scored token included, as in KGW's min-hash "Algorithm 3"), then mixes in the scored token.
    """

    def __init__(self, key: SecretKey | bytes | str, gamma: float = 0.25, context_width: int = 1,
                 self_hash: bool = False):
        super().__init__(gamma, context_width, self_hash)
        self.name = PROVGUARD_SCHEMES[int(self_hash)]
        key = as_key(key)
        self._token_seed = prf.derive_seed(key, "provguard.text.kgw/token")
        self._pair_seed = prf.derive_seed(key, f"{self.name}/w{self.context_width}")
        self._vocab_cache: dict[tuple[int, str], torch.Tensor] = {}

    @property
    def prev_len(self) -> int:
        """Previous tokens that the green list of the next token depends on."""
        return self.ngram_len - 1

    def token_hash(self, tokens: torch.Tensor) -> torch.Tensor:
        """Keyed 64-bit hash of token ids (= ``prf.stream_u64(token_seed, ...)[tokens]``), same shape."""
        return hashing.stream_at(self._token_seed, tokens)

    def green(self, prev: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Green test for every candidate after each context.

        prev: ``(B, prev_len)`` int64 token ids; candidates: ``(B, K)`` or ``(K,)`` int64 token ids.
        Returns ``(B, K)`` bool on ``prev``'s device.
        """
        return self._green_hashed(prev, self.token_hash(candidates.to(prev.device)))

    def _green_hashed(self, prev: torch.Tensor, cand_h: torch.Tensor) -> torch.Tensor:
        cand_h = cand_h.expand(prev.shape[0], -1)
        prev_h = self.token_hash(prev)
        if self.self_hash:
            anchor = cand_h
            if prev.shape[1]:
                flip = -(1 << 63)
                prev_min = ((prev_h ^ flip).min(dim=1).values ^ flip).unsqueeze(1)
                anchor = torch.where(hashing.unsigned_less(cand_h, prev_min), cand_h, prev_min)
            state = hashing.splitmix64(anchor + hashing._signed(self._pair_seed))
        else:
            state = torch.full((prev.shape[0],), hashing._signed(self._pair_seed), dtype=torch.int64,
                               device=prev.device)
            for j in range(prev.shape[1]):
                state = hashing.splitmix64(state + prev_h[:, j])
            state = state.unsqueeze(1)
        return hashing.below_fraction(hashing.splitmix64(state ^ cand_h), self.gamma)

    def green_mask(self, prev: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """Green lists over the whole vocabulary: prev ``(B, prev_len)`` -> ``(B, vocab_size)`` bool."""
        key = (vocab_size, str(prev.device))
        if key not in self._vocab_cache:  # token hashes of the whole vocabulary, once per device
            self._vocab_cache.clear()
            self._vocab_cache[key] = self.token_hash(torch.arange(vocab_size, device=prev.device))
        return self._green_hashed(prev, self._vocab_cache[key])

    def green_ngrams(self, ngrams: np.ndarray) -> np.ndarray:
        ngrams = torch.from_numpy(np.ascontiguousarray(ngrams, dtype=np.int64))
        return self.green(ngrams[:, :-1], ngrams[:, -1:])[:, 0].numpy()

    def repeat_key(self, ngrams: np.ndarray) -> np.ndarray:
        """Left-hash: the n-gram. Self-hash: (anchor token, scored token), the anchor being the window
        token with the smallest keyed hash (ties cannot change the test, which uses hash values)."""
        if not self.self_hash:
            return ngrams
        window = torch.from_numpy(np.ascontiguousarray(ngrams, dtype=np.int64))
        flipped = self.token_hash(window) ^ -(1 << 63)
        anchor = window.gather(1, flipped.argmin(dim=1, keepdim=True))
        return np.column_stack([anchor[:, 0].numpy(), ngrams[:, -1]])


class TransformersScheme(GreenListScheme):
    """transformers' ``WatermarkLogitsProcessor`` green lists (CPU generator), replicated model-free.

    Green lists are first ``int(vocab_size * gamma)`` entries of ``torch.randperm(vocab_size)`` drawn
    from a CPU ``torch.Generator`` seeded per n-gram; n-grams that share a seed share one permutation,
    and the packed green masks of the last ``cache_size`` seeds are kept (``vocab_size / 8`` bytes
    each), so a batch costs one ``randperm`` per distinct seed instead of one per token.
    """

    TABLE_SIZE = 1_000_003  # transformers' fixed_table size

    def __init__(self, hashing_key: int, vocab_size: int, gamma: float = 0.25, context_width: int = 1,
                 self_hash: bool = False, cache_size: int = 8192):
        super().__init__(gamma, context_width, self_hash)
        if not isinstance(hashing_key, int) or not 0 <= hashing_key < 1 << 63:
            raise KeyMaterialError("transformers schemes take transformers' integer hashing_key "
                                   "(0 <= key < 2**63) as {key}")
        if vocab_size < 2:
            raise ProvguardError(f"vocab size must be at least 2, got {vocab_size}")
        self.name = TRANSFORMERS_SCHEMES[int(self_hash)]
        self.hashing_key = hashing_key
        self.vocab_size = int(vocab_size)
        self.greenlist_size = int(self.vocab_size * self.gamma)
        self.cache_size = cache_size
        self._masks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._table: np.ndarray | None = None

    def __repr__(self) -> str:  # never show the key
        return (f"TransformersScheme(name={self.name!r}, gamma={self.gamma}, "
                f"context_width={self.context_width}, vocab_size={self.vocab_size})")

    def watermarking_config(self, delta: float):
        """The matching ``transformers.WatermarkingConfig`` for ``model.generate``."""
        from transformers import WatermarkingConfig

        return WatermarkingConfig(greenlist_ratio=self.gamma, bias=delta, hashing_key=self.hashing_key,
                                  seeding_scheme="selfhash" if self.self_hash else "lefthash",
                                  context_width=self.context_width)

    def _fixed_table(self) -> np.ndarray:
        if self._table is None:
            gen = torch.Generator(device="cpu")
            gen.manual_seed(self.hashing_key)
            self._table = torch.randperm(self.TABLE_SIZE, generator=gen).numpy()
        return self._table

    def seeds(self, ngrams: np.ndarray) -> np.ndarray:
        """Generator seeds of transformers' ``set_seed``: ``(N, ngram_len)`` int64 -> ``(N,)`` uint64."""
        if not self.self_hash:  # seed = key * previous token (Python ints: no wrap-around)
            tokens, inverse = np.unique(ngrams[:, -2], return_inverse=True)
            mod = (1 << 64) - 1
            values = [(self.hashing_key * int(t)) % mod for t in tokens]
            return np.array(values, dtype=np.uint64)[inverse.reshape(-1)]
        window = ngrams[:, -self.context_width:]
        table = self._fixed_table()
        a = table[window % self.TABLE_SIZE] + 1
        b = table[window[:, -1] % self.TABLE_SIZE] + 1
        with np.errstate(over="ignore"):  # int64 products wrap exactly like torch's
            prod = (np.int64(self.hashing_key) * a) * b[:, None]
        low = prod.min(axis=1)
        # Python's `seed % (2**64 - 1)` on the signed value: negative v -> v + 2**64 - 1
        return low.astype(np.uint64) - (low < 0).astype(np.uint64)

    def repeat_key(self, ngrams: np.ndarray) -> np.ndarray:
        """(generator seed, scored token): left-hash seeds use only the previous token, self-hash seeds
        the window minimum. With context width 1 this equals transformers' n-gram de-duplication."""
        return np.column_stack([self.seeds(ngrams).view(np.int64), ngrams[:, -1]])

    def _packed_mask(self, seed: int) -> np.ndarray:
        mask = self._masks.get(seed)
        if mask is not None:
            self._masks.move_to_end(seed)
            return mask
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed)
        perm = torch.randperm(self.vocab_size, generator=gen)[: self.greenlist_size].numpy()
        dense = np.zeros(self.vocab_size, dtype=bool)
        dense[perm] = True
        mask = np.packbits(dense)
        self._masks[seed] = mask
        if len(self._masks) > self.cache_size:
            self._masks.popitem(last=False)
        return mask

    def green_ngrams(self, ngrams: np.ndarray) -> np.ndarray:
        ngrams = np.asarray(ngrams, dtype=np.int64)
        if not len(ngrams):
            return np.zeros(0, dtype=bool)
        unique_seeds, inverse = np.unique(self.seeds(ngrams), return_inverse=True)
        masks = np.stack([self._packed_mask(int(s)) for s in unique_seeds])
        targets = ngrams[:, -1]
        valid = (targets >= 0) & (targets < self.vocab_size)
        t = np.where(valid, targets, 0)
        byte = masks[inverse.reshape(-1), t >> 3]
        return valid & (((byte >> (7 - (t & 7))) & 1) == 1)


def parse_hashing_key(key: SecretKey | int | str | bytes) -> int:
    """transformers' integer ``hashing_key`` from ``--key`` (decimal or 0x-hex text)."""
    if isinstance(key, int):
        return key
    text = bytes(as_key(key)).decode("utf-8", "replace").strip()
    try:
        return int(text, 0)
    except ValueError:
        raise KeyMaterialError("transformers schemes need an integer key (transformers' hashing_key, "
                               "e.g. {key} 15485863)") from None


def create_scheme(name: str = DEFAULT_SCHEME, key: SecretKey | bytes | str | int | None = None,
                  gamma: float = 0.25, context_width: int = 1,
                  vocab_size: int | None = None) -> GreenListScheme:
    """Build a scheme by name (see :func:`list_schemes`).

    ``key``: secret bytes/text for provguard schemes; transformers' integer ``hashing_key`` for
    transformers schemes, which also need ``vocab_size`` (the model config's, usually the tokenizer's).
    """
    if key is None:
        raise KeyMaterialError("a watermark key is required: pass {key}, {key_file} or $PROVGUARD_KEY")
    if name in PROVGUARD_SCHEMES:
        material = str(key) if isinstance(key, int) else key
        return ProvguardScheme(material, gamma, context_width, self_hash=name.endswith("selfhash"))
    if name in TRANSFORMERS_SCHEMES:
        if vocab_size is None:
            raise ProvguardError(f"scheme {name} needs the model's vocab size")
        return TransformersScheme(parse_hashing_key(key), vocab_size, gamma, context_width,
                                  self_hash=name.endswith("selfhash"))
    raise ProvguardError(f"unknown text watermark scheme {name!r}; choose one of {', '.join(list_schemes())}")
