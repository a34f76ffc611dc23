"""``stream-al bench soak``: a bounded run of steady traffic through ``stream-al run``
with kill -9s, broker stops and label bursts; afterwards, was anything lost or stalled?

``options`` holds what the run is told, ``schedule`` when each disruption comes,
``accounting`` the pure verdicts (stalls, RSS trend, losses), ``traffic`` the producer,
the oracle and the prediction watcher, ``processes`` the daemon and the broker under
test, ``run`` the order of things and ``report`` the table and the plot.
"""
