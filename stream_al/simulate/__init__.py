"""Seeded simulators of the input streams: an ATE test floor and a transaction feed.

They drive the embedded demo, the label benchmark and the integration tests, and they
know the truth behind every record they emit.
"""

from stream_al.simulate.base import SimulatedRecord
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.simulate.transactions import TransactionConfig, TransactionSimulator

__all__ = [
    "FloorConfig",
    "FloorSimulator",
    "SimulatedRecord",
    "TransactionConfig",
    "TransactionSimulator",
]
