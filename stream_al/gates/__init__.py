"""Gates: which affordable records to query (DESIGN §4).

One strategy per module, the contract in ``base``. A gate owns its threshold and its
seeded ``random.Random``; it is pure and picklable. The budget is checked before the
gate (``stream_al.budget``): a gate only ever sees records the budget can afford.
"""

from stream_al.gates.base import THRESHOLD_MAX, THRESHOLD_MIN, AdaptiveThreshold, Gate
from stream_al.gates.config import GateConfig, MeasureName, Strategy, make_gate
from stream_al.gates.fixed import FixedGate
from stream_al.gates.hybrid import HybridGate
from stream_al.gates.randomized import RandomizedUncertaintyGate
from stream_al.gates.ranked import RankedGate, RecentRanks
from stream_al.gates.sampling import RandomGate
from stream_al.gates.variable import VariableUncertaintyGate

__all__ = [
    "THRESHOLD_MAX",
    "THRESHOLD_MIN",
    "AdaptiveThreshold",
    "FixedGate",
    "Gate",
    "GateConfig",
    "HybridGate",
    "MeasureName",
    "RandomGate",
    "RandomizedUncertaintyGate",
    "RankedGate",
    "RecentRanks",
    "Strategy",
    "VariableUncertaintyGate",
    "make_gate",
]
