"""The silicon behind the records: latent process factors, their offsets and drift.

A device's latent factors (speed, leakage, threshold voltage) are the sum of the
process mean (a slow trend plus a wafer-to-wafer random walk), a lot offset, a wafer
offset, an edge effect that grows with the die's radius, and the device's own
correlated variation. Every random draw is keyed by what it describes, so the history
is the same whatever order it is asked in.
"""

from __future__ import annotations

import math

import numpy as np

from stream_al.simulate.base import BoolArray, FloatArray, IntArray, substream
from stream_al.simulate.catalogue import Factor

#: Correlation of device-level variation: fast silicon leaks more and has lower Vth.
FACTOR_CORRELATION = np.array([[1.0, 0.5, -0.4], [0.5, 1.0, -0.5], [-0.4, -0.5, 1.0]])
#: Direction in which edge dies drift (slower, leakier, higher Vth), per unit of effect.
EDGE_DIRECTION = np.array([-0.6, 0.5, 0.4])
#: Autocorrelation of the wafer-to-wafer walk of the process mean.
WALK_MEMORY = 0.95
#: Where rare-mode silicon sits (latent sigmas): fast, yet far less leaky than fast
#: silicon ever is. Every key limit stays on its safe side.
RARE_SPEED, RARE_LEAK = 1.5, -3.0
_CHUNK = 256  # entities (lots, wafers) drawn per keyed generator
_LOT, _WAFER, _WALK = 11, 12, 13


class ProcessHistory:
    """Per-lot and per-wafer latent offsets, drawn lazily and cached.

    Examples
    --------
    >>> h = ProcessHistory(seed=1, lot_sd=0.3, wafer_sd=0.2, walk_sd=0.2)
    >>> first = h.wafer_offsets(np.array([5, 700]))
    >>> again = ProcessHistory(1, 0.3, 0.2, 0.2).wafer_offsets(np.array([700, 5]))
    >>> bool(np.array_equal(first, again[::-1]))
    True
    """

    def __init__(self, seed: int, lot_sd: float, wafer_sd: float, walk_sd: float) -> None:
        self._seed = seed
        self._lot_sd = lot_sd
        self._wafer_sd = wafer_sd
        self._walk_sd = walk_sd
        self._chunks: dict[tuple[int, int], FloatArray] = {}
        self._walk = np.zeros((0, 3))

    def lot_offsets(self, lots: IntArray) -> FloatArray:
        """Latent offset shared by every die of a lot."""
        return self._lot_sd * self._per_entity(_LOT, lots)

    def wafer_offsets(self, wafers: IntArray) -> FloatArray:
        """Latent offset of each wafer: its own draw plus the process walk at its time."""
        return self._wafer_sd * self._per_entity(_WAFER, wafers) + self._walked(
            wafers
        )

    def _per_entity(self, kind: int, ids: IntArray) -> FloatArray:
        chunk_ids, rows = np.divmod(ids, _CHUNK)
        out = np.empty((len(ids), 3))
        for chunk in np.unique(chunk_ids).tolist():
            here = chunk_ids == chunk
            out[here] = self._chunk(kind, chunk)[rows[here]]
        return out

    def _chunk(self, kind: int, chunk: int) -> FloatArray:
        key = (kind, chunk)
        if key not in self._chunks:
            self._chunks[key] = substream(self._seed, kind, chunk).normal(size=(_CHUNK, 3))
        return self._chunks[key]

    def _walked(self, wafers: IntArray) -> FloatArray:
        needed = int(wafers.max()) + 1
        while len(self._walk) < needed:
            self._extend_walk()
        return self._walk[wafers]

    def _extend_walk(self) -> None:
        chunk = len(self._walk) // _CHUNK
        steps = substream(self._seed, _WALK, chunk).normal(size=(_CHUNK, 3))
        steps *= self._walk_sd * math.sqrt(1.0 - WALK_MEMORY**2)
        # Start from the stationary distribution so the first wafers are not special.
        level = self._walk[-1] if len(self._walk) else steps[0] / math.sqrt(
            1.0 - WALK_MEMORY**2
        )
        walk = np.empty((_CHUNK, 3))
        for row in range(_CHUNK):
            level = WALK_MEMORY * level + steps[row]
            walk[row] = level
        self._walk = np.vstack([self._walk, walk])


def device_variation(rng: np.random.Generator, n: int) -> FloatArray:
    """Correlated device-to-device variation of the latent factors, shape (n, 3)."""
    chol = np.linalg.cholesky(FACTOR_CORRELATION)
    variation: FloatArray = rng.normal(size=(n, 3)) @ chol.T
    return variation


def edge_shift(radius: FloatArray, effect: float) -> FloatArray:
    """Latent shift of dies at ``radius`` (0 centre, 1 edge): only the outer ring moves."""
    shift: FloatArray = effect * (radius**4)[:, None] * EDGE_DIRECTION
    return shift


def trend(device: IntArray, run_length: int, drift: FloatArray) -> FloatArray:
    """Deterministic slow drift: reaches ``drift`` at ``run_length`` devices, bounded after.

    A quarter sine rather than a ramp, so an endless demo wanders back instead of
    running off the spec limits.
    """
    phase = np.sin(0.5 * np.pi * device / run_length)
    return phase[:, None] * drift


def functional_fails(latent: FloatArray, threshold: float) -> BoolArray:
    """The hidden interaction: fast *and* leaky silicon fails functional test at speed."""
    speed, leak = latent[:, Factor.SPEED], latent[:, Factor.LEAK]
    fails: BoolArray = (speed > 0) & (speed * leak > threshold)
    return fails


def rare_signature(latent: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Move rare-mode devices to fast but abnormally low-leakage silicon.

    Normally speed and leakage rise together; this pairing breaks that, while every
    key test stays on its safe side, so a model that never saw it calls it a pass.
    """
    moved = latent.copy()
    moved[:, Factor.SPEED] = RARE_SPEED + 0.4 * rng.normal(size=len(latent))
    moved[:, Factor.LEAK] = RARE_LEAK + 0.4 * rng.normal(size=len(latent))
    return moved


def measure(
    latent: FloatArray,
    loadings: FloatArray,
    idio: FloatArray,
    offsets: FloatArray,
    noise_sd: float,
    rng: np.random.Generator,
) -> FloatArray:
    """Standardised test results (devices × tests): the true value plus tester error.

    ``offsets`` are the tester-and-site offsets of each device's test cell.
    """
    n, m = len(latent), len(idio)
    true = latent @ loadings.T + idio * rng.normal(size=(n, m))
    return true + offsets + noise_sd * rng.normal(size=(n, m))
