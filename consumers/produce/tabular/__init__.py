"""CSV and JSON-lines files as input records: the column mapping and value parsing."""
