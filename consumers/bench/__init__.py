"""``stream-al bench …``: label efficiency and throughput, with plots and tables."""
