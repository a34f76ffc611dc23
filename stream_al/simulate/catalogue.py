"""Parametric tests a simulated product runs: names, units, scales and factor loadings.

Each test reads three latent process factors (speed, leakage, threshold voltage) through
its loadings, so tests that share a factor correlate as they do on a real floor. Tests
run in flow groups; a part that fails a group is not measured by the groups after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np

from stream_al.simulate.base import BoolArray, FloatArray, IntArray

Side = Literal["lo", "hi", "both"]


class Factor(IntEnum):
    """Latent process factors, in the order of the loading vectors."""

    SPEED = 0
    LEAK = 1
    VTH = 2


class Group(IntEnum):
    """Test-flow groups in execution order; the value indexes ``HARD_BINS``."""

    LEAKAGE = 0
    POWER = 1
    DC = 2
    SPEED = 3
    FUNCTIONAL = 4  # no parametric result: the hidden interaction decides it
    STRESS = 5  # the late screen that catches the rare failure mode


#: Hard bin of the first failing group (bin 1 means every group passed).
HARD_BINS = (2, 3, 4, 5, 6, 9)
PASS_BIN = 1


@dataclass(frozen=True, slots=True)
class TestTemplate:
    """One parametric test: ``value = nominal + sd·u`` (or ``nominal·exp(sd·u)`` if log)."""

    name: str
    nominal: float
    sd: float
    loadings: tuple[float, float, float]
    group: Group
    decimals: int
    log: bool = False  # leakage-like currents are log-normal: long upper tail
    limit: Side | None = None  # spec limits on this test make it a key test


def _t(
    name: str,
    nominal: float,
    sd: float,
    loadings: tuple[float, float, float],
    group: Group,
    decimals: int,
    log: bool = False,
    limit: Side | None = None,
) -> TestTemplate:
    return TestTemplate(name, nominal, sd, loadings, group, decimals, log, limit)


G = Group
COMMON = (
    _t("cont_vdd_mv", -620.0, 8.0, (0.0, 0.1, 0.3), G.LEAKAGE, 1),
    _t("leak_ua", 0.40, 0.45, (0.35, 0.85, -0.2), G.LEAKAGE, 4, log=True, limit="hi"),
    _t("iih_ua", 0.05, 0.40, (0.2, 0.75, -0.1), G.LEAKAGE, 5, log=True),
    _t("iil_ua", -0.05, 0.40, (0.2, 0.7, -0.1), G.LEAKAGE, 5, log=True),
    _t("ioz_ua", 0.12, 0.40, (0.25, 0.8, -0.15), G.LEAKAGE, 4, log=True),
    _t("idd_static_ma", 1.20, 0.30, (0.3, 0.8, -0.3), G.POWER, 4, log=True, limit="hi"),
    _t("idd_dyn_ma", 38.0, 2.2, (0.8, 0.35, -0.2), G.POWER, 2),
    _t("vdd_core_v", 0.900, 0.006, (-0.1, -0.2, 0.2), G.DC, 4),
    _t("vdd_io_v", 1.800, 0.010, (0.0, -0.1, 0.15), G.DC, 4),
    _t("vth_n_mv", 420.0, 14.0, (-0.35, -0.4, 0.8), G.DC, 1, limit="hi"),
    _t("vth_p_mv", -440.0, 15.0, (0.3, 0.4, -0.8), G.DC, 1),
    _t("vol_mv", 180.0, 9.0, (-0.3, 0.1, 0.5), G.DC, 1),
    _t("voh_v", 1.720, 0.012, (0.3, 0.0, -0.45), G.DC, 4),
    _t("ring_osc_mhz", 850.0, 24.0, (0.92, 0.25, -0.2), G.SPEED, 2),
    _t("tpd_ns", 1.35, 0.045, (-0.85, -0.1, 0.3), G.SPEED, 4),
)

FAMILIES: dict[str, tuple[str, tuple[TestTemplate, ...]]] = {
    "PMIC": ("PMIC_FT_v3.2", (
        _t("vout_buck1_v", 1.200, 0.008, (0.1, 0.0, -0.3), G.DC, 4, limit="both"),
        _t("osc_freq_khz", 2200.0, 45.0, (0.75, 0.1, -0.2), G.SPEED, 1, limit="lo"),
        _t("vout_buck2_v", 3.300, 0.020, (0.1, 0.0, -0.25), G.DC, 4),
        _t("vout_ldo1_v", 2.800, 0.015, (0.0, -0.1, 0.3), G.DC, 4),
        _t("uvlo_rise_v", 2.700, 0.020, (0.0, 0.0, 0.6), G.DC, 4),
        _t("uvlo_fall_v", 2.450, 0.020, (0.0, 0.0, 0.55), G.DC, 4),
        _t("iq_ua", 45.0, 0.12, (0.3, 0.5, -0.2), G.POWER, 2, log=True),
        _t("rdson_hs_mohm", 85.0, 4.0, (-0.5, 0.0, 0.6), G.DC, 2),
        _t("rdson_ls_mohm", 62.0, 3.0, (-0.5, 0.0, 0.55), G.DC, 2),
        _t("ilim_a", 2.600, 0.060, (0.4, 0.0, -0.3), G.DC, 3),
        _t("soft_start_ms", 1.000, 0.030, (-0.5, 0.0, 0.2), G.SPEED, 4),
        _t("efficiency_pct", 91.5, 0.5, (-0.2, -0.5, 0.2), G.POWER, 2),
    )),
    "MCU": ("MCU_WS_v1.8", (
        _t("sram_vmin_v", 0.720, 0.015, (-0.3, 0.2, 0.6), G.DC, 4, limit="hi"),
        _t("fmax_mhz", 2000.0, 55.0, (0.9, 0.2, -0.25), G.SPEED, 1, limit="lo"),
        _t("idd_run_ma", 12.5, 0.6, (0.7, 0.4, -0.2), G.POWER, 3),
        _t("idd_sleep_ua", 2.10, 0.35, (0.2, 0.85, -0.2), G.POWER, 4, log=True),
        _t("flash_read_ns", 24.0, 0.8, (-0.8, 0.0, 0.3), G.SPEED, 2),
        _t("flash_prog_us", 18.0, 0.9, (0.0, 0.0, 0.5), G.SPEED, 2),
        _t("adc_inl_lsb", 0.55, 0.25, (0.0, 0.0, 0.2), G.DC, 3, log=True),
        _t("adc_dnl_lsb", 0.30, 0.25, (0.0, 0.0, 0.2), G.DC, 3, log=True),
        _t("bandgap_v", 1.200, 0.004, (0.0, 0.0, 0.3), G.DC, 4),
        _t("pll_lock_us", 42.0, 2.0, (-0.6, 0.0, 0.2), G.SPEED, 2),
        _t("rc_osc_mhz", 16.00, 0.12, (0.6, 0.1, -0.2), G.SPEED, 3),
        _t("por_thr_v", 1.450, 0.015, (0.0, 0.0, 0.5), G.DC, 4),
    )),
    "RF": ("RF_FT_v2.0", (
        _t("nf_db", 1.80, 0.08, (-0.3, 0.4, 0.2), G.DC, 3, limit="hi"),
        _t("gain_db", 22.0, 0.30, (0.7, -0.1, -0.3), G.SPEED, 2, limit="lo"),
        _t("pout_dbm", 18.5, 0.35, (0.5, 0.0, -0.3), G.SPEED, 2),
        _t("p1db_dbm", 16.2, 0.30, (0.5, -0.1, -0.2), G.SPEED, 2),
        _t("iip3_dbm", 8.5, 0.40, (0.3, -0.2, -0.1), G.SPEED, 2),
        _t("evm_pct", 1.60, 0.15, (-0.3, 0.4, 0.1), G.SPEED, 3, log=True),
        _t("lo_freq_mhz", 2440.0, 1.2, (0.3, 0.0, -0.1), G.SPEED, 2),
        _t("vco_tune_v", 1.100, 0.050, (-0.6, 0.0, 0.3), G.SPEED, 3),
        _t("idd_tx_ma", 180.0, 6.0, (0.6, 0.4, -0.2), G.POWER, 1),
        _t("idd_rx_ma", 42.0, 1.5, (0.5, 0.4, -0.2), G.POWER, 2),
        _t("rssi_err_db", 0.0, 0.40, (0.1, 0.0, 0.1), G.DC, 2),
        _t("pll_lock_us", 55.0, 2.5, (-0.6, 0.0, 0.2), G.SPEED, 2),
    )),
}


def family_of(product: str, index: int) -> str:
    """The test family of a product: its name prefix, else the families in turn."""
    for family in FAMILIES:
        if product.upper().startswith(family):
            return family
    return list(FAMILIES)[index % len(FAMILIES)]


@dataclass(frozen=True, slots=True, eq=False)
class TestProgram:
    """The tests of one product as arrays, columns in test-flow order.

    Limits ``lo``/``hi`` are in standardised units (``u``) and start open; calibration
    sets them for key tests.
    """

    product: str
    name: str
    tests: tuple[str, ...]
    nominal: FloatArray
    sd: FloatArray
    log: BoolArray
    loadings: FloatArray  # (tests, factors)
    idio: FloatArray  # sd of the test's own variation, so var(u) is about 1
    group: IntArray
    decimals: tuple[int, ...]
    side: tuple[Side | None, ...]

    @property
    def key(self) -> BoolArray:
        """Mask of the tests with spec limits."""
        return np.array([s is not None for s in self.side])

    def physical(self, u: FloatArray) -> FloatArray:
        """Standardised results ``u`` (devices × tests) in each test's unit, rounded."""
        linear = self.nominal + self.sd * u
        values = np.where(self.log, self.nominal * np.exp(self.sd * np.where(self.log, u, 0)),
                          linear)
        for column, decimals in enumerate(self.decimals):
            values[:, column] = np.round(values[:, column], decimals)
        return values


def build_program(product: str, index: int, n_tests: int, rng: np.random.Generator) -> TestProgram:
    """The test program of a product with ``n_tests`` tests (key tests always included).

    Beyond the catalogue, tests repeat on further pins or blocks (``leak2_ua``, …) with
    jittered loadings and nominal values.

    Examples
    --------
    >>> p = build_program("MCU-B3", 1, 40, np.random.default_rng(0))
    >>> p.name, len(p.tests), len(set(p.tests)), "fmax_mhz" in p.tests
    ('MCU_WS_v1.8', 40, 40, True)
    """
    program_name, own = FAMILIES[family_of(product, index)]
    catalogue = sorted(COMMON + own, key=lambda t: t.limit is None)  # key tests first
    chosen = list(catalogue[:n_tests])
    plain = [t for t in catalogue if t.limit is None]
    for extra in range(n_tests - len(chosen)):
        chosen.append(_replica(plain[extra % len(plain)], 2 + extra // len(plain), rng))
    chosen.sort(key=lambda t: t.group)  # stable: flow order, catalogue order within a group
    return _as_arrays(product, program_name, chosen)


def _replica(template: TestTemplate, number: int, rng: np.random.Generator) -> TestTemplate:
    stem, _, unit = template.name.rpartition("_")
    jitter = rng.normal(0.0, 0.1, 3)
    loadings = np.clip(np.array(template.loadings) + jitter, -0.95, 0.95)
    nominal = template.nominal * (1.0 + rng.normal(0.0, 0.02))
    return TestTemplate(
        f"{stem}{number}_{unit}", float(nominal), template.sd,
        (float(loadings[0]), float(loadings[1]), float(loadings[2])),
        template.group, template.decimals, template.log, None,
    )


def _as_arrays(product: str, program_name: str, tests: list[TestTemplate]) -> TestProgram:
    loadings = np.array([t.loadings for t in tests], dtype=np.float64)
    # Keep every test some variation of its own: nothing is a pure copy of a factor.
    idio = np.sqrt(np.clip(1.0 - (loadings**2).sum(axis=1), 0.05, None))
    return TestProgram(
        product=product,
        name=program_name,
        tests=tuple(t.name for t in tests),
        nominal=np.array([t.nominal for t in tests]),
        sd=np.array([t.sd for t in tests]),
        log=np.array([t.log for t in tests]),
        loadings=loadings,
        idio=idio,
        group=np.array([int(t.group) for t in tests], dtype=np.int64),
        decimals=tuple(t.decimals for t in tests),
        side=tuple(t.limit for t in tests),
    )
