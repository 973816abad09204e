"""Counter-based random streams, one per chain, that do not depend on batch or chunk size.

Every random number the simulator draws is a pure function of ``(seed, chain index, generation, tag,
element index)``: ``splitmix64`` (the same mixer as :mod:`provguard.watermark.prf`) applied to a
per-(chain, generation, tag) stream seed plus the element counter, computed with wrapping int64
arithmetic in torch (:func:`provguard.watermark.prf.splitmix64_torch`, the one torch twin of the NumPy
reference). A draw is one vectorised block over ``[chains, elements]``: the counters, the mixer (in
place, no per-value temporaries) and the Box-Muller transform each run once per call. A chain therefore draws the same numbers whether it runs alone, in a chunk of
3 or in a batch of 10,000, on CPU or on CUDA; and a draw of ``n`` elements is a prefix of a draw of
``n + 1``, so per-chain sample counts can differ inside one batch.
"""
from __future__ import annotations

import hashlib
import math

import torch

from provguard.watermark.prf import splitmix64_torch

_MASK64 = (1 << 64) - 1


def _s64(x: int) -> int:
    """An unsigned 64-bit constant as the signed int64 torch stores."""
    x &= _MASK64
    return x - (1 << 64) if x >= 1 << 63 else x


_GOLDEN = _s64(0x9E3779B97F4A7C15)
_GEN_MULT = _s64(0xD6E8FEB86659FD93)
_INV_2_53 = 1.0 / (1 << 53)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """splitmix64 finaliser on int64 tensors (bit-identical to :func:`provguard.watermark.prf.splitmix64`)."""
    return splitmix64_torch(x)


def tag_id(tag: str) -> int:
    """Stable 63-bit id of a stream tag (BLAKE2b, never Python's salted ``hash``)."""
    return int.from_bytes(hashlib.blake2b(tag.encode(), digest_size=8).digest(), "little") >> 1


class ChainStreams:
    """Random streams of the chains ``chain_ids`` (global chain indices, shape ``[C]``).

    Methods return float64 tensors of shape ``[C, *shape]`` on ``device``; ``gen`` (int) and ``tag``
    (str) name independent streams.
    """

    def __init__(self, seed: int, chain_ids: torch.Tensor, device: torch.device | str = "cpu"):
        self.seed = int(seed)
        self.device = torch.device(device)
        self.chain_ids = chain_ids.to(device=self.device, dtype=torch.int64)
        base = splitmix64(torch.tensor([_s64(self.seed * 0x2545F4914F6CDD1D + 1)], device=self.device))
        self._chain_keys = splitmix64(base + splitmix64(self.chain_ids * _GOLDEN + 0x1234567))

    def __len__(self) -> int:
        return int(self.chain_ids.numel())

    def subset(self, index: torch.Tensor) -> "ChainStreams":
        """Streams of a subset of these chains (``index`` into the chain axis)."""
        return ChainStreams(self.seed, self.chain_ids[index.to(self.chain_ids.device)], self.device)

    def stream_seed(self, gen: int, tag: str) -> torch.Tensor:
        """Per-chain int64 stream seeds ``[C]`` for ``(gen, tag)``."""
        salt = _s64(int(gen) * 0xD6E8FEB86659FD93 + tag_id(tag))
        return splitmix64(self._chain_keys ^ splitmix64(torch.tensor(salt, device=self.device)))

    def bits64(self, gen: int, tag: str, n: int, offset: int = 0) -> torch.Tensor:
        """``n`` raw int64 words per chain from element ``offset`` on, ``[C, n]``."""
        idx = torch.arange(offset + 1, offset + n + 1, device=self.device, dtype=torch.int64)
        idx *= _GOLDEN
        return splitmix64_torch(self.stream_seed(gen, tag)[:, None] + idx[None, :], inplace=True)

    def uniform(self, gen: int, tag: str, shape: tuple[int, ...], offset: int = 0) -> torch.Tensor:
        """Uniforms in the open interval (0, 1), 53 random bits each, ``[C, *shape]`` (elements from ``offset``)."""
        n = math.prod(shape)
        b = self.bits64(gen, tag, n, offset)
        b >>= 11
        b &= (1 << 53) - 1
        u = b.to(torch.float64)
        u += 0.5
        u *= _INV_2_53
        return u.reshape(len(self), *shape)

    def normal(self, gen: int, tag: str, shape: tuple[int, ...], offset: int = 0) -> torch.Tensor:
        """Standard normals (Box-Muller on pairs of uniforms), ``[C, *shape]``; prefix-stable in ``n``.

        ``offset`` (even) skips that many normals of the stream.
        """
        if offset % 2:
            raise ValueError("normal offsets must be even (Box-Muller pairs)")
        n = math.prod(shape)
        pairs = (n + 1) // 2
        u = self.uniform(gen, tag, (pairs, 2), offset=offset)
        r = torch.log(u[..., 0])
        r *= -2.0
        r.sqrt_()
        theta = u[..., 1] * (2.0 * math.pi)
        z = torch.empty(len(self), pairs, 2, dtype=torch.float64, device=self.device)
        torch.mul(r, torch.cos(theta), out=z[..., 0])
        torch.mul(r, theta.sin_(), out=z[..., 1])
        z = z.reshape(len(self), 2 * pairs)
        return (z if 2 * pairs == n else z[:, :n]).reshape(len(self), *shape)

    def gamma(self, gen: int, tag: str, shape_param: torch.Tensor, tries: int = 12) -> torch.Tensor:
        """Gamma(shape_param, 1) draws, ``shape_param`` of shape ``[C, m]`` with every entry >= 0.5.

        Marsaglia-Tsang (2000): proposal ``j`` of entry ``i`` uses normal and uniform number
        ``j * m + i`` of the chain's stream, and the first accepted proposal is the draw (acceptance
        >= 0.95 each, so all ``tries`` fail with probability < 1e-15). One proposal is computed for
        every entry and the rest only for chains that need them - the result is the same either way.
        ``U**(1/a)`` boosts ``a < 1``. Entries with ``shape_param <= 0`` return 0.
        """
        a = shape_param.to(torch.float64)
        m = a.shape[1]
        boost = a < 1.0
        d = torch.where(boost, a + 1.0, a).clamp_min(1.0) - 1.0 / 3.0
        first = 1
        g, ok = self._mt_proposals(gen, tag, d, 0, first)
        todo = torch.nonzero(~ok.all(1)).flatten()
        if todo.numel() and tries > first:
            sub = self.subset(todo)
            g2, ok2 = sub._mt_proposals(gen, tag, d[todo], first * m, tries - first)
            g[todo] = torch.where(ok[todo], g[todo], g2)
        if bool(boost.any()):  # the boost stream is read only where it is used, so skipping it is exact
            u = self.uniform(gen, tag + "/gamma-boost", (m,))
            g = torch.where(boost, g * u ** (1.0 / a.clamp_min(1e-12)), g)
        return torch.where(a > 0, g, torch.zeros_like(g))

    def _mt_proposals(self, gen, tag, d, offset, tries):
        """First accepted Marsaglia-Tsang value among ``tries`` proposals from element ``offset``; ``(g, ok)``, ``[C, m]``."""
        m = d.shape[1]
        c = 1.0 / torch.sqrt(9.0 * d)
        skip = offset % 2  # normals come in Box-Muller pairs: start at the pair, drop its first half
        z = self.normal(gen, tag + "/gamma-z", (skip + tries * m,), offset=offset - skip)[:, skip:].reshape(-1, tries, m)
        u = self.uniform(gen, tag + "/gamma-u", (tries, m), offset=offset)
        v = (1.0 + c[:, None, :] * z) ** 3
        acc = (v > 0) & (torch.log(u) < 0.5 * z * z + d[:, None, :] * (1.0 - v + torch.log(v.clamp_min(1e-300))))
        g = v[:, 0]  # the first accepted proposal (proposal 0 when none is)
        for j in range(tries - 1, 0, -1):
            g = torch.where(acc[:, j], v[:, j], g)
        g = torch.where(acc[:, 0], v[:, 0], g)
        return d * g, acc.any(1)

    def binomial(self, gen: int, tag: str, n: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Exact ``Binomial(n, p)`` draws, one per chain (``n [C]`` int >= 0, ``p [C]`` in [0, 1]) -> int64 ``[C]``.

        Inversion of the exact CDF: the draw is the smallest ``k`` with ``F(k; n, p) >= u`` for the
        chain's uniform ``u`` (one per chain, so a chain's draw does not depend on the batch). Chains
        that share ``(n, p)`` share one CDF table (scipy's ``binom.cdf``, float64) over the window
        ``n p +- 40 sd`` (the mass outside it is below 1e-300), searched with ``searchsorted``: a sweep has
        a handful of distinct pairs, so the cost is one table per pair plus O(log n) per chain.
        """
        from scipy import stats as _stats

        n = n.to(torch.int64)
        p = p.to(torch.float64)
        u = self.uniform(gen, tag, (1,))[:, 0]
        out = torch.zeros(len(self), dtype=torch.int64, device=self.device)
        if bool((n == n[0]).all()) and bool((p == p[0]).all()):  # the common case: one pair, no sort
            groups = [(int(n[0]), float(p[0]), slice(None))]
        else:
            n_values, n_index = torch.unique(n, return_inverse=True)
            p_values, p_index = torch.unique(p, return_inverse=True)
            keys, inverse = torch.unique(n_index * len(p_values) + p_index, return_inverse=True)
            groups = [(int(n_values[k // len(p_values)]), float(p_values[k % len(p_values)]), inverse == i)
                      for i, k in enumerate(keys.tolist())]
        for n_i, p_i, sel in groups:
            if n_i == 0 or p_i <= 0.0:
                continue
            if p_i >= 1.0:
                out[sel] = n_i
                continue
            sd = math.sqrt(n_i * p_i * (1.0 - p_i))
            lo = max(0, int(n_i * p_i - 40.0 * sd) - 1)
            hi = min(n_i, int(n_i * p_i + 40.0 * sd) + 2)
            ks = torch.arange(lo, hi + 1, dtype=torch.float64)
            cdf = torch.as_tensor(_stats.binom.cdf(ks.numpy(), n_i, p_i), dtype=torch.float64, device=self.device)
            out[sel] = lo + torch.searchsorted(cdf, u[sel].contiguous()).clamp_max(hi - lo)
        return out

    def chi2(self, gen: int, tag: str, df: torch.Tensor) -> torch.Tensor:
        """Chi-square draws with per-entry degrees of freedom ``df`` (``[C, m]``, >= 1 or 0 for none)."""
        return 2.0 * self.gamma(gen, tag, df.to(torch.float64) / 2.0)
