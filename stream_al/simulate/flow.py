"""The test flow: which group a device fails first, its hard bin, what goes unmeasured."""

from __future__ import annotations

import numpy as np

from stream_al.simulate.base import BoolArray, FloatArray, IntArray
from stream_al.simulate.calibrate import Limits
from stream_al.simulate.catalogue import HARD_BINS, PASS_BIN, Group, TestProgram

PASSED = -1  # "first failing group" of a device that passed every group


def first_failure(
    program: TestProgram, limits: Limits, u: FloatArray, functional: BoolArray, rare: BoolArray
) -> IntArray:
    """Index of the first failing group of each device in flow order, or ``PASSED``.

    Examples
    --------
    >>> from stream_al.simulate.catalogue import build_program
    >>> p = build_program("PMIC-A7", 0, 8, np.random.default_rng(0))
    >>> lim = Limits(np.full(8, -3.0), np.full(8, 3.0))
    >>> u = np.zeros((3, 8)); u[1, -1] = 9.0
    >>> first_failure(p, lim, u, np.array([False, False, True]), np.zeros(3, bool)).tolist()
    [-1, 3, 4]
    """
    outside = limits.outside(u)
    failed = np.zeros((len(u), len(Group)), dtype=bool)
    for group in (Group.LEAKAGE, Group.POWER, Group.DC, Group.SPEED):
        failed[:, group] = outside[:, program.group == group].any(axis=1)
    failed[:, Group.FUNCTIONAL] = functional
    failed[:, Group.STRESS] = rare
    first: IntArray = np.where(failed.any(axis=1), failed.argmax(axis=1), PASSED)
    return first


def hard_bins(first: IntArray) -> IntArray:
    """Hard bin per device: 1 for a pass, else the bin of the first failing group.

    Examples
    --------
    >>> hard_bins(np.array([-1, 0, 5])).tolist()
    [1, 2, 9]
    """
    bins: IntArray = np.where(first == PASSED, PASS_BIN, np.array(HARD_BINS)[first])
    return bins


def unmeasured(
    program: TestProgram, first: IntArray, skip_rate: float, rng: np.random.Generator
) -> BoolArray:
    """Results that are missing: every test after the failing group, plus random skips.

    Key tests are never skipped at random: the tester has to run them to bin the part.

    Examples
    --------
    >>> from stream_al.simulate.catalogue import build_program
    >>> p = build_program("RF-C1", 2, 30, np.random.default_rng(0))
    >>> gone = unmeasured(p, np.array([-1, 0]), 0.0, np.random.default_rng(0))
    >>> int(gone[0].sum()), bool(gone[1, p.group > 0].all() and not gone[1, p.group == 0].any())
    (0, True)
    """
    failing = first != PASSED
    stopped = failing[:, None] & (program.group[None, :] > first[:, None])
    skipped = (rng.random(stopped.shape) < skip_rate) & ~program.key
    result: BoolArray = stopped | skipped
    return result
