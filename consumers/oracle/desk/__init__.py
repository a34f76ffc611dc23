"""The labelling desk (``stream-al desk``): a web page of the live queue of oracle
requests read from Kafka; its service is shared with the terminal labeller."""
