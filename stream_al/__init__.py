"""stream-al: the pure core of a streaming active learner.

Nothing in this package imports Kafka or does network I/O; ``consumers`` is the edge.
"""

__version__ = "0.1.0"
