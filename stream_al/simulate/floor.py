"""A seeded ATE test floor: parametric records with the truth behind them.

Several products run on several multi-site testers; each device's results come from
latent process factors (with lot, wafer, edge and drift effects), tester and site
offsets and noise. Spec limits on key tests and a hidden interaction decide pass/fail
and the hard bin; a rare failure mode, invisible to the limits, starts mid-run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NamedTuple

import numpy as np
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from stream_al.simulate.base import (
    DEFAULT_START,
    BoolArray,
    FloatArray,
    IntArray,
    SimulatedRecord,
    nan_to_none,
    substream,
)
from stream_al.simulate.calibrate import Limits, functional_threshold, spec_limits
from stream_al.simulate.catalogue import TestProgram, build_program
from stream_al.simulate.flow import first_failure, hard_bins, unmeasured
from stream_al.simulate.layout import FloorLayout, Placement, WaferMap
from stream_al.simulate.parametric import DeviceBatch, RecordStyle, to_records
from stream_al.simulate.process import (
    ProcessHistory,
    device_variation,
    edge_shift,
    functional_fails,
    measure,
    rare_signature,
    trend,
)
from stream_al.simulate.sensors import EquipmentSensors

_PILOT = 20_000  # pilot devices for calibration: enough for a stable 1 % quantile
_BLOCK = 1024  # devices generated per keyed generator
_PROGRAM, _OFFSETS, _PILOT_KEY, _DEVICES, _SENSORS = 1, 2, 3, 4, 5


class _Silicon(NamedTuple):
    """What the devices of a block truly are, before any tester sees them."""

    latent: FloatArray
    functional: BoolArray  # fails the functional test (the hidden interaction)
    rare: BoolArray  # carries the rare failure mode


class FloorConfig(BaseModel):
    """What the simulated floor looks like; defaults give a realistic mid-size floor.

    Rates are fractions of devices, offsets and noise are in standard deviations of a
    test's device-to-device variation, drift is in latent-factor sigmas.

    Examples
    --------
    >>> FloorConfig(products=("PMIC-A7",), fail_rate=0.12).fail_rate
    0.12
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    products: tuple[str, ...] = Field(("PMIC-A7", "MCU-B3", "RF-C1"), min_length=1)
    tests_per_product: int = Field(40, ge=6, le=200)
    testers: int = Field(6, ge=1, le=900)
    first_tester_number: int = Field(91, ge=0, le=99)
    sites_per_tester: int = Field(4, ge=1, le=64)
    wafer_diameter_dies: int = Field(18, ge=4, le=300)
    wafers_per_lot: int = Field(5, ge=1, le=50)
    run_length: int = Field(20_000, ge=100, description="devices in the scenario")
    fail_rate: float = Field(0.10, gt=0.01, lt=0.5, description="at the start of the run")
    functional_share: float = Field(0.25, ge=0.0, le=0.9, description="of fails, hidden")
    rare_mode_start: float = Field(0.5, ge=0.0, description="fraction of run_length")
    rare_mode_rate: float = Field(0.015, ge=0.0, le=0.5)
    drift: tuple[float, float, float] = Field((0.6, 0.2, -0.4), description="speed, leak, vth")
    walk_sd: float = Field(0.2, ge=0.0)
    lot_sd: float = Field(0.25, ge=0.0)
    wafer_sd: float = Field(0.15, ge=0.0)
    edge_effect: float = Field(1.0, ge=0.0)
    tester_offset_sd: float = Field(0.1, ge=0.0)
    site_offset_sd: float = Field(0.05, ge=0.0)
    measurement_noise: float = Field(0.15, ge=0.0)
    skip_rate: float = Field(0.01, ge=0.0, lt=1.0)
    inline_label_fraction: float = Field(0.0, ge=0.0, le=1.0)
    device_interval_ms: int = Field(50, ge=1)
    sensor_columns: int = Field(
        0, ge=0, le=2000, description="equipment sensor columns added to every record, "
        "none of them informative: constant, mostly missing, or noise (a fab's wide "
        "vectors)")
    start: AwareDatetime = DEFAULT_START

    @field_validator("products")
    @classmethod
    def _distinct(cls, products: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(products)) != len(products) or not all(products):
            raise ValueError("products must be distinct, non-empty names")
        return products

    @model_validator(mode="after")
    def _a_tester_per_product(self) -> FloorConfig:
        if self.testers < len(self.products):
            raise ValueError(
                f"testers ({self.testers}) must be at least the number of products"
                f" ({len(self.products)}): each tester runs one product"
            )
        return self


class FloorSimulator:
    """Seeded stream of simulated parametric records (DESIGN §2) with their truth.

    The stream is a pure function of ``(config, seed)``: reading it in any chunks gives
    the same records. About ``fail_rate`` of devices fail at the start; from
    ``rare_mode_begins`` on, a rare failure mode (hard bin 9) appears.

    Examples
    --------
    >>> sim = FloorSimulator(FloorConfig(products=("MCU-B3",), tests_per_product=12), seed=3)
    >>> first = next(sim.stream(1))
    >>> first.record["record_id"], first.record["product"], first.mode
    ('L1000-W01-X06-Y00-S1-000001', 'MCU-B3', 'normal')
    >>> len(first.record["measurements"]), first.record["label"] is None
    (12, True)
    """

    def __init__(self, config: FloorConfig | None = None, seed: int = 0) -> None:
        self.config = c = config or FloorConfig()
        self.seed = seed
        self._wafer = WaferMap.round(c.wafer_diameter_dies)
        self._layout = FloorLayout(c.testers, c.sites_per_tester, len(self._wafer),
                                   c.wafers_per_lot)
        self._history = ProcessHistory(seed, c.lot_sd, c.wafer_sd, c.walk_sd)
        self._programs = tuple(
            build_program(p, i, c.tests_per_product, substream(seed, _PROGRAM, i))
            for i, p in enumerate(c.products)
        )
        self._cells = tuple(self._cell_offsets(i, p) for i, p in enumerate(self._programs))
        self._sensors = tuple(EquipmentSensors.draw(c.sensor_columns, substream(seed, _SENSORS, i))
                              for i in range(len(c.products)))
        self._threshold, self._limits = self._calibrate()
        self._style = RecordStyle(c.products, tuple(p.name for p in self._programs),
                                  self._wafer, c.start, c.device_interval_ms,
                                  c.first_tester_number)
        self._next = 0
        self._cached: tuple[int, list[SimulatedRecord]] = (-1, [])

    @property
    def programs(self) -> Mapping[str, TestProgram]:
        """The test program of each product (test names in flow order)."""
        return {p.product: p for p in self._programs}

    @property
    def rare_mode_begins(self) -> int:
        """Sequence number of the first device that may show the rare failure mode."""
        return int(self.config.rare_mode_start * self.config.run_length)

    def stream(self, n: int) -> Iterator[SimulatedRecord]:
        """The next ``n`` records, continuing after the last record handed out."""
        for _ in range(n):
            block, offset = divmod(self._next, _BLOCK)
            record = self._block(block)[offset]
            self._next += 1
            yield record

    def _block(self, block: int) -> list[SimulatedRecord]:
        if self._cached[0] != block:
            self._cached = (block, to_records(self._devices(block), self._style))
        return self._cached[1]

    def _devices(self, block: int) -> DeviceBatch:
        c = self.config
        device = np.arange(block * _BLOCK, (block + 1) * _BLOCK, dtype=np.int64)
        rng = substream(self.seed, _DEVICES, block)
        where = self._layout.place(device)
        latent = self._latent(device, where, rng)
        rare = (device >= self.rare_mode_begins) & (rng.random(len(device)) < c.rare_mode_rate)
        inline = rng.random(len(device)) < c.inline_label_fraction
        latent[rare] = rare_signature(latent[rare], rng)
        silicon = _Silicon(latent, functional_fails(latent, self._threshold), rare)
        product = where.tester % len(c.products)  # testers are set up per product
        bins = np.ones(len(device), dtype=np.int64)
        measurements: list[dict[str, float | None]] = [{} for _ in device]
        for index in np.unique(product).tolist():
            rows = np.flatnonzero(product == index)
            rng = substream(self.seed, _DEVICES, block, 1 + index)
            bins[rows] = self._test(index, rows, where, silicon, measurements, rng)
            if c.sensor_columns:
                self._sensors[index].read(rows, measurements,
                                          substream(self.seed, _SENSORS, block, 1 + index))
        return DeviceBatch(device, where, product, bins, rare, inline, measurements)

    def _latent(self, device: IntArray, where: Placement, rng: np.random.Generator) -> FloatArray:
        c, h = self.config, self._history
        radius = self._wafer.radius[where.die]
        drift = trend(device, c.run_length, np.array(c.drift))
        offsets = h.lot_offsets(where.lot) + h.wafer_offsets(where.wafer_uid)
        latent: FloatArray = (drift + offsets + edge_shift(radius, c.edge_effect)
                              + device_variation(rng, len(device)))
        return latent

    def _test(
        self, index: int, rows: IntArray, where: Placement, silicon: _Silicon,
        out: list[dict[str, float | None]], rng: np.random.Generator,
    ) -> IntArray:
        """Test the devices ``rows`` of product ``index``; fill ``out``, return their bins."""
        program, c = self._programs[index], self.config
        cells = self._cells[index][where.tester[rows], where.site[rows]]
        u = measure(silicon.latent[rows], program.loadings, program.idio, cells,
                    c.measurement_noise, rng)
        first = first_failure(program, self._limits[index], u, silicon.functional[rows],
                              silicon.rare[rows])
        values = program.physical(u)
        values[unmeasured(program, first, c.skip_rate, rng)] = np.nan
        for row, cells_of_row in zip(rows.tolist(), nan_to_none(values), strict=True):
            out[row] = dict(zip(program.tests, cells_of_row, strict=True))
        return hard_bins(first)

    def _cell_offsets(self, index: int, program: TestProgram) -> FloatArray:
        """Offsets of each (tester, site) cell on each test, shape (testers, sites, tests)."""
        c, m = self.config, len(program.tests)
        rng = substream(self.seed, _OFFSETS, index)
        tester = c.tester_offset_sd * rng.normal(size=(c.testers, 1, m))
        site = c.site_offset_sd * rng.normal(size=(c.testers, c.sites_per_tester, m))
        cells: FloatArray = tester + site
        return cells

    def _calibrate(self) -> tuple[float, tuple[Limits, ...]]:
        c = self.config
        rng = substream(self.seed, _PILOT_KEY)
        latent = self._pilot_latent(rng)
        threshold = functional_threshold(latent, c.fail_rate * c.functional_share)
        functional = functional_fails(latent, threshold)
        limits = []
        for program, cells in zip(self._programs, self._cells, strict=True):
            key = program.key
            tester = rng.integers(c.testers, size=_PILOT)
            site = rng.integers(c.sites_per_tester, size=_PILOT)
            u_key = measure(latent, program.loadings[key], program.idio[key],
                            cells[:, :, key][tester, site], c.measurement_noise, rng)
            jitter = rng.uniform(0.9, 1.1, size=int(key.sum()))
            limits.append(spec_limits(program, u_key, functional, c.fail_rate, jitter))
        return threshold, tuple(limits)

    def _pilot_latent(self, rng: np.random.Generator) -> FloatArray:
        """Devices as at the start of the run: every offset drawn afresh, no trend."""
        c = self.config
        spread = np.sqrt(c.lot_sd**2 + c.wafer_sd**2 + c.walk_sd**2)
        radius = self._wafer.radius[rng.integers(len(self._wafer), size=_PILOT)]
        latent: FloatArray = (device_variation(rng, _PILOT)
                              + spread * rng.normal(size=(_PILOT, 3))
                              + edge_shift(radius, c.edge_effect))
        return latent
