"""``stream-al bench throughput``: the daemon against bare clients on a real broker."""
