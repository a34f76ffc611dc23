"""Presence-weighted completeness: a part is judged against the values its model's parts
usually have, so rarely written sensors do not make every part look empty."""

from __future__ import annotations

import math
import random
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from stream_al.learner import Learner, LearnerConfig
from stream_al.presence import Presence, completeness
from stream_al.records import ParametricRecord
from tests.factories import T0

values = st.none() | st.floats(allow_nan=True, allow_infinity=False)
records = st.dictionaries(st.sampled_from(["vdd", "idd", "fmax", "eq_1", "eq_2"]), values)


@given(st.lists(records, min_size=1, max_size=30))
def test_a_share_is_always_in_the_unit_interval(stream: list[dict[str, float | None]]) -> None:
    presence = Presence()
    for x in stream:
        assert 0.0 <= presence.share_then_learn(x) <= 1.0


def test_a_complete_part_is_complete_and_an_empty_one_empty() -> None:
    presence = Presence()
    for _ in range(20):
        presence.share_then_learn({"vdd": 0.9, "idd": 1.0})
    assert presence.share_then_learn({"vdd": 0.9, "idd": 1.0}) == 1.0
    assert presence.share_then_learn({"vdd": None, "idd": math.nan}) == 0.0
    assert presence.share_then_learn({}) == 0.0


def test_rarely_written_sensors_do_not_make_an_ordinary_part_look_empty() -> None:
    rng = random.Random(1)
    tests = [f"t{i}" for i in range(40)]
    sensors = [f"eq_{i}" for i in range(300)]

    def part(tests_run: int) -> dict[str, float | None]:
        x: dict[str, float | None] = {t: (1.0 if i < tests_run else None)
                                      for i, t in enumerate(tests)}
        return x | {s: (2.0 if rng.random() < 0.1 else None) for s in sensors}

    presence = Presence()
    for _ in range(300):
        presence.share_then_learn(part(40))
    ordinary = presence.share_then_learn(part(40))
    stopped = presence.share_then_learn(part(4))
    assert ordinary > 0.9 and stopped < 0.25  # the plain shares: 0.21 and 0.10


def test_a_record_of_endless_names_cannot_grow_the_counts_without_bound() -> None:
    presence = Presence(max_names=50)
    presence.share_then_learn({f"m{i}": 1.0 for i in range(10_000)})
    assert len(presence._present) == 50


def test_the_learner_asks_about_complete_parts_beside_rarely_written_sensors() -> None:
    # 40 tests and 300 sensors written for one part in ten: a complete part holds about
    # 21 % of its names' values, near min_measured_share (0.2), so judged plainly many
    # would be "too empty to ask"; judged against the usual it is whole.
    rng = random.Random(2)
    # Parts arrive labelled so the model leaves warm-up, where little_data is judged.
    learner = Learner(LearnerConfig(budget={"fraction": 0.5}, learn_inline_labels=True))
    complete_skipped: list[bool] = []
    stopped_skipped: list[bool] = []
    for index in range(1_500):
        stopped = index % 10 == 0
        values: dict[str, float | None] = {
            f"t{i}": (rng.gauss(1, 0.1) if not stopped or i < 2 else None) for i in range(40)}
        values |= {f"eq_{i}": (2.0 if rng.random() < 0.1 else None) for i in range(300)}
        record = ParametricRecord(record_id=f"p{index}", ts=T0, product="PMIC-A7",
                                  measurements=values,
                                  label=("fail" if stopped else "pass") if index < 200 else None)
        skipped = learner.decide(record, T0 + timedelta(seconds=index)).skipped
        if index >= 300:
            (stopped_skipped if stopped else complete_skipped).append(skipped == "little_data")
    assert complete_skipped and not any(complete_skipped)
    assert stopped_skipped and sum(stopped_skipped) > 0.5 * len(stopped_skipped)


def _plain_share_then_learn(presence: Presence, measurements: dict[str, float | None]) -> float:
    """The share as first written (two passes and ``completeness``): the one-pass loop
    must give exactly this, bit for bit."""
    known = {name: value is not None and not math.isnan(value)
             for name, value in measurements.items()}
    share = sum(known.values()) / len(known) if known else 0.0
    if presence.records:
        weighted = completeness([(presence._rate(name), has) for name, has in known.items()])
        share = share if weighted is None else weighted
    for name, has in known.items():
        if has:
            if name in presence._present:
                presence._present[name] += 1
            elif len(presence._present) < presence.max_names:
                presence._present[name] = 1
                presence._first[name] = presence.records
    presence.records += 1
    return round(share, 4)


@given(st.lists(records, min_size=1, max_size=40), st.integers(1, 6))
def test_the_one_pass_share_is_the_two_pass_share_exactly(
        stream: list[dict[str, float | None]], max_names: int) -> None:
    fast, slow = Presence(max_names), Presence(max_names)
    for x in stream:
        assert fast.share_then_learn(x) == _plain_share_then_learn(slow, x)
    assert (fast._present, fast._first, fast.records) == (slow._present, slow._first,
                                                          slow.records)
