"""The soak's pure parts: stalls and recoveries on synthetic series, the RSS trend, the
sums over restarts, the loss accounting, the schedule and the report."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from consumers.bench.soak.accounting import (
    Cumulative,
    Disruption,
    Sample,
    find_stalls,
    label_accounting,
    prediction_accounting,
    recoveries,
    rss_by_process,
    rss_trend,
    verdict,
)
from consumers.bench.soak.options import SoakOptions
from consumers.bench.soak.report import plot, summary_rows
from consumers.bench.soak.schedule import plan


def series(predicted: list[int], produced: int = 1000, every: float = 2.0) -> list[Sample]:
    """Samples ``every`` s apart with these distinct-prediction counts."""
    return [Sample(t=i * every, produced=produced, predicted=p) for i, p in enumerate(predicted)]


# -- stalls ------------------------------------------------------------------------


def test_steady_progress_is_no_stall() -> None:
    assert find_stalls(series(list(range(0, 400, 20))), [], 10) == []


def test_a_flat_stretch_with_input_waiting_is_one_stall_from_last_progress_to_next() -> None:
    counts = [0, 10, 20] + [30] * 8 + [40, 50]  # 30 seen at t=6, again new at t=22
    (stall,) = find_stalls(series(counts), [], 10)
    assert (stall.start, stall.end, stall.seconds) == (6.0, 22.0, 16.0)


def test_a_gap_at_or_under_the_threshold_is_no_stall() -> None:
    counts = [0, 10] + [20] * 5 + [30]  # flat from t=4 to t=14: 10 s
    assert find_stalls(series(counts), [], 10) == []


def test_a_stall_running_to_the_end_is_closed_at_the_last_sample() -> None:
    (stall,) = find_stalls(series([0, 10] + [20] * 10), [], 10)  # 20 is new at t=4
    assert (stall.start, stall.end) == (4.0, 22.0)


def test_nothing_waiting_is_no_stall() -> None:
    idle = [Sample(t=i * 2.0, produced=20, predicted=20) for i in range(20)]
    assert find_stalls(idle, [], 10) == []


def test_an_excused_window_hides_its_part_of_a_flat_stretch() -> None:
    counts = [0, 10] + [20] * 20 + [30]
    assert find_stalls(series(counts), [(0.0, 44.0)], 10) == []
    (stall,) = find_stalls(series(counts), [(0.0, 20.0)], 10)
    assert (stall.start, stall.end) == (20.0, 44.0)


def test_a_killed_daemon_that_recovers_in_time_is_excused_and_timed() -> None:
    samples = series([0, 10, 20] + [20] * 6 + [30, 40])  # kill at 5; new at t=18
    (row,) = recoveries(samples, [Disruption("kill", 5.0, 5.0)], allowance_s=60)
    assert (row["recovered_after_s"], row["excused_until"]) == (13.0, 18.0)
    assert find_stalls(samples, [(row["start"], row["excused_until"])], 10) == []


def test_after_a_kill_only_the_new_process_working_counts_as_recovery() -> None:
    """The watcher still reads what the dead process sent: that is no recovery."""
    old = [Sample(t=t, produced=1000, predicted=int(10 * t), pid=1, handled=10.0 * t)
           for t in (0.0, 2.0, 4.0)]
    lagging = [Sample(t=6.0, produced=1000, predicted=50, pid=2, handled=None),
               Sample(t=8.0, produced=1000, predicted=55, pid=2, handled=0.0)]
    new = [Sample(t=t, produced=1000, predicted=55, pid=2, handled=0.0)
           for t in (10.0, 12.0, 14.0, 16.0, 18.0)]
    back = [Sample(t=20.0, produced=1000, predicted=70, pid=2, handled=30.0)]
    (row,) = recoveries([*old, *lagging, *new, *back], [Disruption("kill", 5.0, 5.0)], 60)
    assert row["recovered_after_s"] == 15.0


def test_a_recovery_lasts_until_the_working_daemon_s_predictions_are_seen() -> None:
    """After an outage the daemon may handle records well before its producer delivers
    the predictions: the recovery ends when they are seen, not before."""
    quiet = [Sample(t=t, produced=1000, predicted=500, pid=3, handled=500.0)
             for t in (0.0, 2.0, 4.0, 6.0, 8.0, 10.0)]
    handling = [Sample(t=t, produced=1000, predicted=500, pid=3, handled=600.0 + t)
                for t in (12.0, 14.0, 16.0, 18.0, 20.0, 22.0)]
    seen = [Sample(t=24.0, produced=1000, predicted=700, pid=3, handled=700.0)]
    samples = [*quiet, *handling, *seen]
    (row,) = recoveries(samples, [Disruption("broker", 1.0, 9.0)], 60)
    assert row["recovered_after_s"] == 15.0
    assert find_stalls(samples, [(row["start"], row["excused_until"])], 10) == []


def test_silence_beyond_the_recovery_allowance_is_a_stall_and_unrecovered() -> None:
    samples = series([0, 10] + [10] * 60)  # kill at 3, nothing ever again
    (row,) = recoveries(samples, [Disruption("kill", 3.0, 3.0)], allowance_s=30)
    assert row["recovered_after_s"] is None and row["excused_until"] == 33.0
    (stall,) = find_stalls(samples, [(row["start"], row["excused_until"])], 10)
    assert (stall.start, stall.end) == (32.0, 122.0)  # from the last excused sample


def test_a_broker_stop_is_excused_from_stop_to_restart_and_recovery() -> None:
    samples = series([0, 10] + [10] * 20 + [20])  # broker away 4..30; new at t=44
    (row,) = recoveries(samples, [Disruption("broker", 4.0, 30.0)], allowance_s=60)
    assert row["recovered_after_s"] == 14.0
    assert find_stalls(samples, [(row["start"], row["excused_until"])], 10) == []


# -- sums over restarts, RSS -------------------------------------------------------


def test_counters_are_summed_over_processes_and_not_within_one() -> None:
    sums = Cumulative()
    sums.update(11, {"labels_applied": 3.0, "records_predicted": 100.0})
    sums.update(11, {"labels_applied": 5.0, "records_predicted": 150.0})
    sums.update(12, {"labels_applied": 2.0})
    assert sums.update(12, {"labels_applied": 4.0, "records_predicted": 10.0}) == {
        "labels_applied": 9.0, "records_predicted": 160.0}


def test_rss_trend_compares_first_and_last_quarter_medians() -> None:
    flat = rss_trend([200.0, 210.0, 190.0, 200.0] * 3)
    assert flat is not None and flat["change"] == 0.0 and flat["within_tolerance"]
    growing = rss_trend([100.0 + i for i in range(40)])
    assert growing is not None and not growing["within_tolerance"]
    assert not growing["levelled_off"]  # a leak grows in the second half too
    # Up by a fifth in the first half, flat after: over the tolerance, yet levelled off.
    settled = rss_trend([200.0 + 2 * i for i in range(20)] + [240.0] * 20)
    assert settled is not None and not settled["within_tolerance"] and settled["levelled_off"]
    assert growing["first_quarter_median_mb"] == pytest.approx(104.5)
    assert rss_trend([100.0] * 7) is None


def test_rss_is_also_judged_per_process() -> None:
    samples = [Sample(t=float(i), produced=0, predicted=0, rss_mb=100.0 + (i % 10),
                      pid=1 if i < 10 else 2) for i in range(20)]
    lives = rss_by_process(samples)
    assert [(life["pid"], life["from"], life["to"], life["max_mb"]) for life in lives] == [
        (1, 0.0, 9.0, 109.0), (2, 10.0, 19.0, 109.0)]


# -- losses ------------------------------------------------------------------------


def test_every_acknowledged_record_needs_a_prediction() -> None:
    found = prediction_accounting(["r1", "r2", "r3"], ["r1", "r3", "r3", "stray"])
    assert (found["missing"], found["missing_examples"], found["ok"]) == (1, ["r2"], False)
    assert found["predictions_for_unknown_records"] == 1
    assert prediction_accounting(["r1"], ["r1", "r1"])["ok"]


def test_labels_learnt_must_equal_labels_sent_minus_duplicates() -> None:
    clean = label_accounting(sent=120, distinct=100, learned=100, reported={})
    assert (clean["duplicates_sent"], clean["lost"], clean["ok"]) == (20, 0, True)
    short = label_accounting(sent=120, distinct=100, learned=97, reported={})
    assert (short["lost"], short["ok"]) == (3, False)
    assert not label_accounting(sent=5, distinct=5, learned=None, reported={})["ok"]


def test_the_verdict_names_every_failure() -> None:
    predictions = prediction_accounting(["a", "b"], ["a"])
    labels = label_accounting(3, 3, 2, {})
    stalls = find_stalls(series([0, 10] + [10] * 10), [], 10)
    unrecovered: list[dict[str, Any]] = [{"recovered_after_s": None}, {"recovered_after_s": 4.0}]
    found = verdict(predictions, labels, stalls, unrecovered)
    assert not found["ok"]
    assert found["reasons"] == ["1 records without a prediction", "labels lost: 1",
                                "1 stalls, longest 20 s",
                                "1 disruptions without a prediction after them"]
    good = verdict(prediction_accounting(["a"], ["a"]), label_accounting(1, 1, 1, {}), [], [])
    assert good == {"ok": True, "reasons": []}


# -- schedule and options ----------------------------------------------------------


def test_disruptions_are_spaced_and_leave_the_end_quiet() -> None:
    events = plan(1200, 240, 420, quiet_tail_s=30, spacing_s=80)
    assert [(e.at, e.kind) for e in events] == [
        (240, "kill"), (420, "broker"), (500, "kill"), (720, "kill"), (840, "broker"),
        (960, "kill")]
    assert plan(1200, None, None, 30, 80) == []
    assert [e.kind for e in plan(90, 30, None, 30, 10)] == ["kill", "kill"]


def test_options_size_the_simulator_for_the_whole_run() -> None:
    options = SoakOptions(minutes=20, rate=200)
    assert options.seconds == 1200 and options.records >= 240_000
    assert options.quiet_tail_s < options.seconds


# -- report ------------------------------------------------------------------------


def _result(samples: list[Sample]) -> dict[str, Any]:
    predictions = {**prediction_accounting(["a"], ["a"]), "prediction_messages": 2}
    recovered = recoveries(samples, [Disruption("kill", 4.0, 4.0),
                                     Disruption("broker", 8.0, 12.0)], 60)
    return {"settings": {"minutes": 1, "stall_s": 10.0}, "predictions": predictions,
            "labels": label_accounting(4, 3, 3, {}), "recoveries": recovered,
            "restarts": {"kills": 1, "broker_stops": 1, "unexpected_exits": []},
            "rss": {"overall": rss_trend([s.rss_mb or 0.0 for s in samples])},
            "stalls": [{"start": 20.0, "end": 32.0, "seconds": 12.0}],
            "verdict": {"ok": False, "reasons": ["1 stalls"]},
            "machine": {"load_average_after": [1.5, 2.0, 2.5]},
            "samples": [asdict(s) for s in samples]}


def test_the_summary_states_each_figure(tmp_path: Path) -> None:
    samples = [Sample(t=2.0 * i, produced=10 * i, predicted=9 * i, rss_mb=150.0 + i, pid=7)
               for i in range(30)]
    rows = dict(summary_rows(_result(samples)))
    assert rows["records with a prediction"] == "1 (0 missing)"
    assert rows["labels learnt by the final state"] == "3 (lost: 0)"
    assert rows["kill -9s / broker stops"] == "1 / 1"
    assert rows["stalls > 10 s"] == "1"
    assert rows["load average after (1, 5, 15 min)"] == "1.50, 2.00, 2.50"
    assert "MB" in rows["RSS, first → last quarter median"]
    path = tmp_path / "soak.png"
    plot(_result(samples), path)
    assert path.read_bytes()[:4] == b"\x89PNG"
