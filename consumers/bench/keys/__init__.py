"""``stream-al bench keys``: what one model key costs, per template."""
