"""``finish_started_joins``, the workaround for the join stall the soak hunts: a join
that has begun keeps the poll driving it (the integration test shows it on a broker)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from consumers.kafka.kafka_python import finish_started_joins


class _Coordinator:
    def __init__(self) -> None:
        self.rejoin_needed = False
        self.rejoining = False

    def need_rejoin(self) -> bool:
        return self.rejoin_needed


@pytest.mark.parametrize(("needed", "rejoining", "expected"), [
    (False, False, False), (True, False, True),
    (False, True, True),  # the lost join: asked for, half done, no longer "needed"
    (True, True, True)])
def test_a_started_join_counts_as_needed(needed: bool, rejoining: bool,
                                         expected: bool) -> None:
    coordinator = _Coordinator()
    finish_started_joins(SimpleNamespace(_coordinator=coordinator))
    coordinator.rejoin_needed, coordinator.rejoining = needed, rejoining
    assert coordinator.need_rejoin() is expected


def test_a_kafka_python_without_the_flag_is_refused_loudly() -> None:
    class Other:
        def need_rejoin(self) -> bool:
            return False

    with pytest.raises(RuntimeError, match="recheck finish_started_joins"):
        finish_started_joins(SimpleNamespace(_coordinator=Other()))


def test_the_installed_kafka_python_still_has_what_the_workaround_reads() -> None:
    from kafka.coordinator.base import BaseCoordinator
    from kafka.coordinator.consumer import ConsumerCoordinator

    assert "rejoining" in BaseCoordinator.__init__.__code__.co_names
    assert callable(ConsumerCoordinator.need_rejoin)
