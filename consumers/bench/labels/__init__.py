"""``stream-al bench labels``: strategies compared on labelled streams at label budgets."""
