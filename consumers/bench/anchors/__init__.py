"""``stream-al bench anchors``: stream-al's strategies against River's ``EntropySampler``
and scikit-activeml's stream strategies, on the same plain River models, streams in the
same order, one simulated oracle and one cold-start rule (``harness``)."""
