"""``stream-al run``: the run loop, its checkpoint store, and its health/metrics HTTP."""
