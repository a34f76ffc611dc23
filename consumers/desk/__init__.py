"""The labelling desk: a web page (``stream-al desk``) and a terminal labeller
(``stream-al oracle label``) sharing one queue of oracle requests read from Kafka."""
