"""``stream-al produce``: tester files (STDF, CSV, JSONL) or a simulated floor, validated
with the core's codec and published as input records."""
