"""The neural family: a small class-conditional DDPM per chain, trained on Fashion-MNIST images.

Real data are Fashion-MNIST training images (drawn with replacement by each chain's stream); a model
is one :class:`~provguard.sim.neural.DDPMGenerator` per chain. Each generation warm-starts from the
previous generation's network and trains ``ddpm_train_steps`` steps on the pool (generation 1 starts
from scratch); ``lam`` is classifier-free guidance ``w = 1/lam - 1``. Networks cannot share one tensor
axis cheaply, so chains run one at a time (the image batch fills the device). Metrics use the frozen
LeNet features of :mod:`provguard.sim.features` (its hash is recorded): ``fd`` (primary; n_eff is
calibrated on generation 1), k-NN precision/recall/density/coverage, ``kid``, the entropy of predicted
classes and ``modes_lost`` (classes with < 10% of their real share).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from provguard.sim import metrics as M
from provguard.sim.families.base import EvalContext, Family, Samples
from provguard.sim.neural import DDPMGenerator, N_CLASSES, to_unit


class RealImages(NamedTuple):
    n_chains: int


class ImageModel(NamedTuple):
    generators: list


def _seed(t: torch.Tensor) -> int:
    return int(t.item()) & ((1 << 63) - 1)


class ImageFamily(Family):
    name = "ddpm"
    primary = "fd"
    calibrate_with_chains = False
    max_chains_per_chunk = 1  # one DDPM is trained per chain
    probe_normalize = True  # the probe sees frozen LeNet features, L2-normalised like CLIP embeddings

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        from provguard.data import load_fashion_mnist

        root = cfg.extra.get("fashion_mnist_root")
        self.train_x, self.train_y = load_fashion_mnist("train", root)
        self.test_x, _ = load_fashion_mnist("t10k", root)
        self._extractor = cfg.extra.get("feature_extractor")
        self.feature_hash = None

    @property
    def extractor(self):
        if self._extractor is None:
            from provguard.sim.features import FeatureExtractor

            self._extractor = FeatureExtractor.default()
        self.feature_hash = self._extractor.hash
        return self._extractor

    def real_model(self, n_chains):
        return RealImages(n_chains)

    def calibration_samples(self, n: int, seed: int) -> torch.Tensor:
        """Held-out real images (t10k split, the first ``n``; ``seed`` unused) as float ``[n, 28, 28]`` in [-1, 1]."""
        return to_unit(self.test_x[:n])[:, 0].to(self.device)

    def sample(self, model, n_max, lam, streams, gen, tag):
        c = len(streams)
        if isinstance(model, RealImages):
            pool_x, pool_y = (self.test_x, None) if tag.startswith("eval") else (self.train_x, self.train_y)
            idx = (streams.uniform(gen, tag, (n_max,)) * len(pool_x)).long().clamp_max(len(pool_x) - 1).cpu().numpy()
            x = to_unit(pool_x[idx.reshape(-1)])[:, 0].reshape(c, n_max, 28, 28)
            y = torch.as_tensor(np.asarray(pool_y)[idx] if pool_y is not None else np.full(idx.shape, N_CLASSES)).long()
        else:
            seeds = streams.stream_seed(gen, tag)
            xs, ys = [], []
            for i, g in enumerate(model.generators):
                w = 1.0 / float(lam[i]) - 1.0
                xi, yi = g.sample_float(n_max, guidance=w, steps=self.cfg.ddpm_sample_steps, seed=_seed(seeds[i]))
                xs.append(xi[:, 0])
                ys.append(yi)
            x, y = torch.stack(xs), torch.stack(ys)
        x = x.to(self.device)
        return Samples(x, torch.ones(x.shape[:2], dtype=torch.bool, device=self.device), synthetic=True,
                       labels=y.to(self.device))

    def fit(self, groups, prev, streams, gen):
        seeds = streams.stream_seed(gen, "train")
        gens = []
        for i in range(len(streams)):
            x = torch.cat([g.x[i][g.mask[i]] for g in groups])
            y = torch.cat([g.labels[i][g.mask[i]] for g in groups])
            base = prev.generators[i].copy() if isinstance(prev, ImageModel) else \
                DDPMGenerator(seed=_seed(seeds[i]) % (1 << 31), device=self.device)
            gens.append(base.train(x[:, None].float(), y.cpu().numpy(), steps=self.cfg.ddpm_train_steps,
                                   batch=self.cfg.ddpm_batch, seed=_seed(seeds[i])))
        return ImageModel(gens)

    def probe_features(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen LeNet features ``[C, N, 64]`` float64 of images ``x [C, N, 28, 28]`` (what ``--filter probe`` sees)."""
        c, n = x.shape[:2]
        return self.extractor.features(x.reshape(-1, 1, 28, 28).cpu()).reshape(c, n, -1).to(self.device)

    def metrics(self, model, ctx: EvalContext):
        """Every metric of this family is sample-based (there is no closed form): computed on every chain."""
        fake = self.sample(model, ctx.n_eval, ctx.lam, ctx.streams, ctx.gen, "eval/model").x
        ref = self.sample(ctx.real, ctx.n_eval, ctx.lam, ctx.streams, 0, "eval/real").x
        c = fake.shape[0]
        ff = self.extractor.features(fake.reshape(-1, 1, 28, 28).cpu()).reshape(c, ctx.n_eval, -1)
        fr = self.extractor.features(ref.reshape(-1, 1, 28, 28).cpu()).reshape(c, ctx.n_eval, -1)
        pred = self.extractor.predict(fake.reshape(-1, 1, 28, 28).cpu()).reshape(c, ctx.n_eval)
        share = torch.nn.functional.one_hot(pred, N_CLASSES).to(torch.float64).mean(1)
        out = {"fd": M.fd(fr, ff), "kid": M.kid(fr, ff), "class_entropy": M.entropy(share),
               "modes_lost": (share < 0.1 / N_CLASSES).to(torch.float64).sum(1),
               "pixel_std": fake.reshape(c, -1).to(torch.float64).std(1).cpu()}
        out.update(M.prdc(fr, ff, ctx.k))
        if ctx.mark is not None:
            z = ctx.mark.score(fake)
            out["artifact_shift"] = z.mean(1).cpu()
            out["artifact_tpr"] = (z > 3.090232306167813).to(torch.float64).mean(1).cpu()  # z_{1e-3}
        return {k: v.to(self.device) for k, v in out.items()}
