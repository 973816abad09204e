"""The torch splitmix64 twin is bit-identical to the NumPy reference."""
import numpy as np
import torch

from provguard.watermark import prf


def _torch(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    t = torch.from_numpy(x.view(np.int64).copy())
    return prf.splitmix64_torch(t, inplace=inplace).numpy().view(np.uint64)


def test_splitmix64_torch_matches_numpy_bit_for_bit():
    rng = np.random.default_rng(2024)
    edges = np.array([0, 1, 2, 2 ** 31, 2 ** 32 - 1, 2 ** 62, 2 ** 63 - 2, 2 ** 63 - 1, 2 ** 63, 2 ** 63 + 1,
                      2 ** 64 - 2, 2 ** 64 - 1], dtype=np.uint64)
    near = np.concatenate([np.uint64(2 ** 63) + rng.integers(-1000, 1000, 500).astype(np.int64).view(np.uint64),
                           np.uint64(2 ** 64 - 1) - rng.integers(0, 1000, 500, dtype=np.uint64)])
    x = np.concatenate([edges, near, rng.integers(0, 2 ** 64, 20000, dtype=np.uint64)])
    ref = prf.splitmix64(x)
    assert np.array_equal(_torch(x), ref)
    assert np.array_equal(_torch(x, inplace=True), ref)
    assert np.array_equal(_torch(x.reshape(-1, 4)), ref.reshape(-1, 4))  # any shape
    # Vigna's test vector: the first output of the splitmix64 generator seeded with 0
    assert int(_torch(np.array([0x9E3779B97F4A7C15], dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF


def test_splitmix64_torch_leaves_its_input_alone_unless_inplace():
    x = torch.tensor([5, -7, 2 ** 62], dtype=torch.int64)
    before = x.clone()
    out = prf.splitmix64_torch(x)
    assert torch.equal(x, before) and not torch.equal(out, before)
    assert prf.splitmix64_torch(x, inplace=True) is x and torch.equal(x, out)


def test_stream_matches_numpy_stream():
    seed, n = 0xDEADBEEFCAFEF00D, 257
    idx = torch.arange(1, n + 1, dtype=torch.int64)
    ours = prf.splitmix64_torch(prf._as_int64(seed) + idx * prf._as_int64(int(prf._GOLDEN)))
    assert np.array_equal(ours.numpy().view(np.uint64), prf.stream_u64(seed, n))
