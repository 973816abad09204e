"""Which data each generation adds to the training pool, and which the next model trains on.

Generation 1 trains on ``n_real`` real samples only. From generation 2 on, each generation adds
``n_synth`` samples of the previous model (all loops) and, in the *fresh* loop, ``n_real`` new real
samples. The pool keeps the additions of the last ``memory`` generations (1 = replace; the whole run
= accumulate, Gerstgrasser et al. 2024). The *augment* loop always trains on its fixed generation-1
real set as well; the *synthetic* loop has no real data after generation 1 unless memory keeps it.
"""
from __future__ import annotations

from collections import deque
from typing import Any


class Pool:
    """The additions of the last ``memory`` generations, plus the fixed real set of an augment loop."""

    def __init__(self, loop: str, memory: int):
        self.loop = loop
        self.entries: deque[list[Any]] = deque(maxlen=memory)
        self.fixed: list[Any] = []

    def add(self, gen: int, groups: list[Any]) -> None:
        """Record what generation ``gen`` adds (its real set at ``gen == 1``, synthetic data after)."""
        if gen == 1 and self.loop == "augment":
            self.fixed = list(groups)
        else:
            self.entries.append(list(groups))

    def training_set(self) -> list[Any]:
        """Groups the model of this generation trains on."""
        return self.fixed + [g for entry in self.entries for g in entry]


def adds_fresh_real(loop: str, gen: int) -> bool:
    """Whether generation ``gen`` draws new real samples."""
    return gen == 1 or loop == "fresh"
