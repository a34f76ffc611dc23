"""STDF V4 files as input records: a record reader and the per-part source."""
