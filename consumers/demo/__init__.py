"""``stream-al demo``: the whole loop in one process on an in-memory bus."""
