"""Green-list schemes: device-independent PRF twin, transformers replication, repeat keys."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from provguard.errors import KeyMaterialError, ProvguardError
from provguard.watermark import prf
from provguard.watermark.text import create_scheme, hashing, list_schemes
from provguard.watermark.text.schemes import ProvguardScheme, TransformersScheme


def test_torch_mixer_matches_numpy_prf_bit_for_bit():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2**64, size=5000, dtype=np.uint64)
    ours = hashing.splitmix64(torch.from_numpy(x.view(np.int64))).numpy().view(np.uint64)
    assert np.array_equal(ours, prf.splitmix64(x))
    seed = prf.derive_seed(b"key", "domain")
    assert np.array_equal(hashing.stream_at(seed, torch.arange(777)).numpy().view(np.uint64),
                          prf.stream_u64(seed, 777))
    assert np.array_equal(hashing.stream_at(seed, torch.arange(100, 110)).numpy().view(np.uint64),
                          prf.stream_u64(seed, 10, offset=100))


def test_unsigned_compare_and_fraction_are_exact():
    a = torch.tensor([-1, 0, 5, -(1 << 63)], dtype=torch.int64)  # uint64: max, 0, 5, 2**63
    b = torch.tensor([0, -1, 6, 5], dtype=torch.int64)
    assert hashing.unsigned_less(a, b).tolist() == [False, True, True, False]
    x = torch.tensor([(1 << 62) - (1 << 11), 1 << 62], dtype=torch.int64)  # uniform = 0.25 - eps, 0.25
    assert hashing.below_fraction(x, 0.25).tolist() == [True, False]


@pytest.mark.parametrize("name,width", [("provguard-lefthash", 1), ("provguard-lefthash", 3),
                                        ("provguard-selfhash", 1), ("provguard-selfhash", 4)])
def test_provguard_mask_and_ngram_test_agree_and_hit_gamma(name, width):
    scheme = create_scheme(name, "k1", gamma=0.25, context_width=width)
    rng = np.random.default_rng(0)
    prev = torch.from_numpy(rng.integers(0, 5000, (6, scheme.prev_len)))
    mask = scheme.green_mask(prev, 5000)
    assert mask.shape == (6, 5000) and mask.dtype == torch.bool
    assert abs(mask.float().mean().item() - 0.25) < 0.01
    cand = rng.integers(0, 5000, 6)
    ngrams = np.column_stack([prev.numpy(), cand])
    assert np.array_equal(scheme.green_ngrams(ngrams), mask[torch.arange(6), torch.from_numpy(cand)].numpy())


def test_provguard_key_and_context_change_the_lists():
    a, b = create_scheme("provguard-lefthash", "k1"), create_scheme("provguard-lefthash", "k2")
    prev = torch.tensor([[17], [18]])
    ma, mb = a.green_mask(prev, 20000), b.green_mask(prev, 20000)
    assert (ma != mb).float().mean() > 0.3          # different keys: unrelated lists
    assert (ma[0] != ma[1]).float().mean() > 0.3    # different contexts: unrelated lists
    assert torch.equal(ma, create_scheme("provguard-lefthash", "k1").green_mask(prev, 20000))  # deterministic


def test_selfhash_repeat_key_is_anchor_and_token():
    s = create_scheme("provguard-selfhash", "k", context_width=3)
    ngrams = np.array([[5, 6, 7], [6, 5, 7], [9, 9, 7]])
    keys = s.repeat_key(ngrams)
    assert keys.shape == (3, 2) and (keys[:, 1] == 7).all()
    # same green result whenever the (anchor, token) key matches
    green = s.green_ngrams(ngrams)
    for i in range(3):
        for j in range(3):
            if tuple(keys[i]) == tuple(keys[j]):
                assert green[i] == green[j]
    assert tuple(keys[0]) == tuple(keys[1])  # same window content in another order -> same anchor


@pytest.mark.parametrize("seeding,width", [("lefthash", 1), ("lefthash", 2), ("selfhash", 1), ("selfhash", 3)])
@pytest.mark.parametrize("key", [15485863, (1 << 62) + 99])
def test_transformers_green_lists_replicated_exactly(seeding, width, key):
    from transformers.generation.logits_process import WatermarkLogitsProcessor

    vocab = 700
    proc = WatermarkLogitsProcessor(vocab_size=vocab, device="cpu", greenlist_ratio=0.3, hashing_key=key,
                                    seeding_scheme=seeding, context_width=width)
    scheme = create_scheme(f"transformers-{seeding}", key, 0.3, width, vocab)
    ngrams = np.random.default_rng(width).integers(0, vocab, (120, scheme.ngram_len))
    ours = scheme.green_ngrams(ngrams)
    ref = [int(g[-1]) in set(proc._get_greenlist_ids(torch.tensor(g if seeding == "selfhash" else g[:-1])).tolist())
           for g in ngrams]
    assert ours.tolist() == ref
    assert scheme.green_ngrams(ngrams).tolist() == ref  # again, from the mask cache


def test_transformers_out_of_vocab_token_is_red():
    scheme = create_scheme("transformers-lefthash", 1, 0.5, 1, 100)
    assert not scheme.green_ngrams(np.array([[3, 100], [3, 5000]])).any()


def test_scheme_factory_errors_and_secrecy():
    assert set(list_schemes()) == {"provguard-lefthash", "provguard-selfhash",
                                   "transformers-lefthash", "transformers-selfhash"}
    with pytest.raises(ProvguardError):
        create_scheme("kgw-unknown", "k")
    with pytest.raises(KeyMaterialError):
        create_scheme("transformers-lefthash", "not-a-number", vocab_size=100)
    with pytest.raises(ProvguardError):
        create_scheme("transformers-lefthash", 5)  # no vocab size
    with pytest.raises(ProvguardError):
        create_scheme("provguard-lefthash", "k", gamma=1.0)
    with pytest.raises(KeyMaterialError):
        create_scheme("provguard-lefthash", None)
    assert isinstance(create_scheme("transformers-selfhash", "0x10", vocab_size=50), TransformersScheme)
    s = create_scheme("transformers-lefthash", 987654321, vocab_size=50)
    assert "987654321" not in repr(s)
    assert isinstance(create_scheme("provguard-selfhash", "k"), ProvguardScheme)
