"""One seed drives everything: named, independent random streams spawned from it.

Each consumer asks for its stream by name; adding a new stream never changes the others (SeedSequence
children are keyed by the name's position in STREAMS, which is append-only).
"""
from __future__ import annotations

import numpy as np

STREAMS = ("trace", "topology", "routing", "scheduler", "torch", "predictor", "evaluator", "validation")


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator of stream `name` for this seed (same seed + name -> same sequence)."""
    if name not in STREAMS:
        raise KeyError(f"unknown random stream {name!r}; known: {', '.join(STREAMS)}")
    child = np.random.SeedSequence(seed).spawn(len(STREAMS))[STREAMS.index(name)]
    return np.random.Generator(np.random.PCG64(child))


def torch_seed(seed: int) -> int:
    """An integer seed for torch.manual_seed, drawn from the 'torch' stream."""
    return int(stream(seed, "torch").integers(2**31 - 1))
