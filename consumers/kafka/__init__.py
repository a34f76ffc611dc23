"""The one Kafka gateway: client factories, the sink, topic plans, broker probing.

Everything that speaks to a broker goes through here, so one producer configuration and
one delivery accounting serve the daemon, ``produce``, the desk and the oracle.
"""
