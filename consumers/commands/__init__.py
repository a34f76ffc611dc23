"""One module per command (or command family); each exposes ``register(cli)``."""
