"""What ``stream-al bench soak`` is told to do, and the figures it records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumers.settings import DEFAULT_CLIENT, KafkaClient
from stream_al.errors import StreamAlError
from stream_al.models import TemplateName

Row = dict[str, Any]


class SoakError(StreamAlError):
    """The soak could not run to its end (no broker, the daemon would not start)."""


@dataclass(frozen=True)
class SoakOptions:
    """One soak: how long, how much traffic, which disruptions, where the results go."""

    minutes: float = 20.0
    rate: float = 200.0
    #: Seconds between kill -9s of the daemon; None: never.
    kill_every_s: float | None = 240.0
    #: Seconds between broker stops (own broker only); None: never.
    broker_stop_every_s: float | None = 420.0
    broker_down_s: float = 20.0
    #: The oracle holds its answers and sends them all at once this often.
    label_burst_every_s: float = 45.0
    sample_every_s: float = 2.0
    #: Input waiting and no new prediction for longer than this is a stall.
    stall_s: float = 10.0
    #: After a kill or a broker restart the daemon may take this long to predict again
    #: (a killed member's session, 10 s, must expire before its partitions move on);
    #: silence beyond it counts as a stall.
    recovery_s: float = 60.0
    #: After the traffic stops: how long to wait for the last predictions and labels.
    drain_s: float = 180.0
    partitions: int = 3
    budget: float = 0.1
    template: TemplateName = "logistic"
    bootstrap_servers: str | None = None
    #: ``kafka.client`` of the daemon and of the soak's own producer, oracle and watcher.
    client: KafkaClient = DEFAULT_CLIENT
    out: Path = Path("bench-results/soak.json")
    plot: Path | None = Path("bench-results/soak.png")
    seed: int = 7

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0

    @property
    def records(self) -> int:
        """How many records the run may send at most (its simulator's length)."""
        return max(100, int(self.rate * self.seconds * 1.2) + 1000)

    @property
    def quiet_tail_s(self) -> float:
        """No disruption this close to the end of the traffic (a broker stop must be over
        by then); recoveries are still watched in the drain that follows."""
        return self.broker_down_s + 10.0
