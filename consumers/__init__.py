"""The edge of stream-al: Kafka clients, HTTP, files and the command line."""
