"""A seeded transaction feed with a non-linear fraud rule that changes mid-run.

Each transaction has numeric fields (amount, account age, recent activity, distance,
anonymous components ``v1``…``v4`` like a PCA of card data) and categorical ones
(channel, country, merchant, card type). A hidden score, partly non-linear and partly
unobserved noise, marks the top ``fraud_rate`` as fraud. At ``drift_at`` the fraudsters
change tactics: a different score takes over (concept drift) at the same fraud rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from stream_al.simulate.base import (
    DEFAULT_START,
    FloatArray,
    SimulatedRecord,
    iso_timestamps,
    substream,
)

CHANNELS = ("pos", "online", "mobile", "atm")
COUNTRIES = ("DE", "FR", "NL", "PL", "GB", "US", "CN", "BR")
MERCHANTS = ("grocery", "fuel", "fashion", "electronics", "travel", "gaming")
CARDS = ("debit", "credit", "prepaid")
_HOME = 0  # index of the home country in COUNTRIES
_BLOCK = 1024
_PILOT = 50_000
_PILOT_KEY, _BLOCK_KEY = 1, 2
Columns = dict[str, npt.NDArray[Any]]
#: Relative activity per hour of day: quiet nights, busy afternoons.
_DAY = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 4, 5, 5,
                 6, 5, 5, 5, 5, 6, 6, 5, 4, 3, 2, 1.5])
_HOURLY = _DAY / _DAY.sum()
#: Mixes independent normals into the mildly correlated components v1…v4.
_V_MIX: FloatArray = np.linalg.cholesky(
    np.array([[1, 0.3, 0, 0], [0.3, 1, 0.2, 0], [0, 0.2, 1, 0], [0, 0, 0, 1]], dtype=np.float64)
)


class TransactionConfig(BaseModel):
    """The shape of the simulated feed.

    Examples
    --------
    >>> TransactionConfig(fraud_rate=0.02).drift_at
    0.5
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_length: int = Field(20_000, ge=100, description="transactions in the scenario")
    fraud_rate: float = Field(0.05, gt=0.0, lt=0.5)
    drift_at: float = Field(0.5, ge=0.0, description="fraction of run_length")
    inline_label_fraction: float = Field(0.0, ge=0.0, le=1.0)
    interval_ms: int = Field(200, ge=1)
    start: AwareDatetime = DEFAULT_START


def _draw(rng: np.random.Generator, n: int) -> Columns:
    """Raw transaction fields as columns; categorical ones as integer codes."""
    channel = rng.choice(len(CHANNELS), n, p=[0.45, 0.3, 0.2, 0.05])
    country = rng.choice(len(COUNTRIES), n, p=[0.6, 0.08, 0.08, 0.06, 0.06, 0.06, 0.03, 0.03])
    merchant = rng.choice(len(MERCHANTS), n, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.1])
    card = rng.choice(len(CARDS), n, p=[0.55, 0.35, 0.1])
    v = rng.normal(size=(n, 4)) @ _V_MIX.T
    online = (channel == 1) | (channel == 2)
    return {
        "amount": np.round(np.exp(3.4 + 0.9 * rng.normal(size=n) + 0.5 * (merchant == 4)
                                  + 0.4 * (merchant == 3)), 2),
        "hour": rng.choice(24, n, p=_HOURLY).astype(np.float64),
        "account_age_days": np.floor(rng.exponential(900.0, n)),
        "txn_count_24h": rng.poisson(2.0 + 1.5 * online, n).astype(np.float64),
        "distance_km": np.round(np.exp(1.5 + 1.2 * rng.normal(size=n) + 2.5 * (country != _HOME)),
                                1),
        **{f"v{i + 1}": np.round(v[:, i], 4) for i in range(4)},
        "channel": channel, "country": country, "merchant": merchant, "card": card,
        "noise": rng.normal(size=n),  # unobserved: no model can be perfect
    }


def _before(c: Columns) -> FloatArray:
    """Card-testing era: big buys on new accounts, foreign night-time online spend."""
    amount_z = (np.log(c["amount"]) - 3.5) / 0.9
    night = (c["hour"] < 6) | (c["hour"] >= 23)
    foreign_online = (c["country"] != _HOME) & ((c["channel"] == 1) | (c["channel"] == 2))
    score: FloatArray = (
        0.8 * amount_z
        + 1.2 * (c["account_age_days"] < 120)
        + 1.0 * foreign_online
        + 1.2 * (foreign_online & night)
        + 0.6 * c["v1"] * c["v2"]
        + 1.4 * ((c["card"] == 2) & (c["merchant"] == 5))
        + 0.7 * c["v3"]
        + 0.4 * c["noise"]
    )
    return score


def _after(c: Columns) -> FloatArray:
    """Account-takeover era: bursts of small mobile fuel/travel spend far from home."""
    amount_z = (np.log(c["amount"]) - 3.5) / 0.9
    mobile_trip = (c["channel"] == 2) & ((c["merchant"] == 1) | (c["merchant"] == 4))
    score: FloatArray = (
        1.4 * mobile_trip
        - 0.6 * amount_z
        + 0.35 * np.maximum(c["txn_count_24h"] - 3.0, 0.0)
        + 0.5 * np.log1p(c["distance_km"]) * (c["v4"] > 0)
        - 0.6 * c["v1"] * c["v2"]
        - 0.7 * c["v3"]
        + 0.4 * c["noise"]
    )
    return score


class TransactionSimulator:
    """Seeded stream of DESIGN §2 transaction records labelled ``fraud``/``ok``.

    ``mode`` is ``"normal"`` before the drift and ``"drifted"`` after. ``hard_bin`` does
    not apply to transactions and is 0.

    Examples
    --------
    >>> sim = TransactionSimulator(seed=1)
    >>> first = next(sim.stream(1))
    >>> first.record["record_id"], first.record["kind"], sorted(first.record["categorical"])
    ('txn-000001', 'transaction', ['card_type', 'channel', 'country', 'merchant'])
    >>> first.truth in ("ok", "fraud"), first.mode, first.hard_bin
    (True, 'normal', 0)
    """

    def __init__(self, seed: int = 0, config: TransactionConfig | None = None) -> None:
        self.config = config or TransactionConfig()
        self.seed = seed
        pilot = _draw(substream(seed, _PILOT_KEY), _PILOT)
        quantile = 1.0 - self.config.fraud_rate
        self._thresholds = tuple(float(np.quantile(s(pilot), quantile)) for s in (_before, _after))
        self._next = 0
        self._cached: tuple[int, list[SimulatedRecord]] = (-1, [])

    @property
    def drift_begins(self) -> int:
        """Sequence number of the first transaction under the new fraud rule."""
        return int(self.config.drift_at * self.config.run_length)

    def stream(self, n: int) -> Iterator[SimulatedRecord]:
        """The next ``n`` records, continuing after the last record handed out."""
        for _ in range(n):
            block, offset = divmod(self._next, _BLOCK)
            if self._cached[0] != block:
                self._cached = (block, self._generate(block))
            self._next += 1
            yield self._cached[1][offset]

    def _generate(self, block: int) -> list[SimulatedRecord]:
        rng = substream(self.seed, _BLOCK_KEY, block)
        columns = _draw(rng, _BLOCK)
        seq = np.arange(block * _BLOCK, (block + 1) * _BLOCK)
        drifted = seq >= self.drift_begins
        fraud = np.where(drifted, _after(columns) > self._thresholds[1],
                         _before(columns) > self._thresholds[0])
        inline = rng.random(_BLOCK) < self.config.inline_label_fraction
        c = self.config
        ts = iso_timestamps(c.start, block * _BLOCK, _BLOCK, c.interval_ms)
        rows = zip(seq.tolist(), ts, _numeric_rows(columns), _categorical_rows(columns),
                   fraud.tolist(), drifted.tolist(), inline.tolist(), strict=True)
        return [_record(*row) for row in rows]


_NUMERIC = ("amount", "hour", "account_age_days", "txn_count_24h", "distance_km",
            "v1", "v2", "v3", "v4")


def _numeric_rows(c: Columns) -> list[dict[str, float]]:
    table = np.column_stack([c[name] for name in _NUMERIC]).tolist()
    return [dict(zip(_NUMERIC, row, strict=True)) for row in table]


def _categorical_rows(c: Columns) -> list[dict[str, str]]:
    names = zip(
        np.array(CHANNELS)[c["channel"]].tolist(), np.array(COUNTRIES)[c["country"]].tolist(),
        np.array(MERCHANTS)[c["merchant"]].tolist(), np.array(CARDS)[c["card"]].tolist(),
        strict=True,
    )
    return [{"channel": ch, "country": co, "merchant": me, "card_type": ca}
            for ch, co, me, ca in names]


def _record(seq: int, ts: str, numeric: dict[str, float], categorical: dict[str, str],
            fraud: bool, drifted: bool, inline: bool) -> SimulatedRecord:
    truth = "fraud" if fraud else "ok"
    record: dict[str, Any] = {
        "schema_version": 1, "kind": "transaction", "record_id": f"txn-{seq + 1:06d}", "ts": ts,
        "numeric": numeric, "categorical": categorical, "label": truth if inline else None,
    }
    return SimulatedRecord(record, truth, 0, "drifted" if drifted else "normal")
