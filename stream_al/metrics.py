"""Every Prometheus metric of stream-al (DESIGN §8), in one object injected where needed.

Label values are bounded: each label takes its values from a small fixed vocabulary
(record kinds, outcomes, query reasons, accuracy windows, dead-letter codes), or from
model keys and partitions, which the configuration bounds. A record id, a query id or
an error sentence never becomes a label value: the sentence goes to the dead letter.

Known label combinations are created up front, so a counter reads 0 before its first
event instead of being absent, and ``rate()`` and alert rules see the series at once.
"""

from __future__ import annotations

import platform
from collections.abc import Hashable, Mapping
from importlib import metadata
from typing import Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from stream_al import __version__
from stream_al.evaluation import WINDOWS, Window
from stream_al.reasons import REASONS

__all__ = [
    "DEAD_LETTER_REASONS",
    "LABEL_OUTCOMES",
    "QUERY_SKIP_REASONS",
    "LABEL_LATENCY_BUCKETS",
    "Metrics",
    "PROCESSING_BUCKETS",
    "RECORD_KINDS",
    "RECORD_OUTCOMES",
    "UNCERTAINTY_BUCKETS",
    "lag_from",
]

#: ``kind`` of a record; ``unknown`` when the bytes could not be decoded at all.
RECORD_KINDS: Final = ("parametric", "transaction", "unknown")
#: What became of a consumed record.
RECORD_OUTCOMES: Final = ("predicted", "queried", "dead_letter")
#: What became of a label (DESIGN §8); the learner's ``LabelOutcome`` in order.
LABEL_OUTCOMES: Final = ("applied", "unknown_query", "expired", "duplicate", "invalid")
#: Dead-letter codes: which kind of message failed, and how. ``other`` catches a code
#: outside this list, so a new code is still counted and never crashes the daemon.
DEAD_LETTER_REASONS: Final = (
    "record_invalid", "record_refused", "record_failed",
    "request_invalid", "request_forged", "request_failed",
    "label_invalid", "label_unknown_query", "label_expired", "label_duplicate", "label_failed",
    "output_refused", "other",
)
#: Why a record the gate would have queried was not: ``too_large``, its request would
#: not fit the requests topic; ``little_data``, it carries almost no measurement.
QUERY_SKIP_REASONS: Final = ("too_large", "little_data")

#: Engineers answer in minutes to an hour; a retest system in seconds; a backlog in hours.
LABEL_LATENCY_BUCKETS: Final = (
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 2700.0, 3600.0,
    5400.0, 7200.0, 14400.0, 28800.0,
)
#: Decode, features, predict and gate take microseconds; a slow model tens of milliseconds.
PROCESSING_BUCKETS: Final = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
    1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1,
)
#: Uncertainty lies in [0, 1]: twenty bins of 0.05 give the heatmap its rows.
UNCERTAINTY_BUCKETS: Final = tuple(round(0.05 * step, 2) for step in range(1, 21))

K = TypeVar("K", bound=Hashable)


def lag_from(end_offsets: Mapping[K, int], positions: Mapping[K, int | None]) -> dict[K, int]:
    """Records left to read per partition: end offset minus position, never negative.

    A partition whose position is unknown (None or missing) is left out rather than
    guessed: no series is better than a wrong one.

    Parameters
    ----------
    end_offsets
        The offset the next produced record will get, per partition.
    positions
        The offset of the next record this consumer will read, per partition.

    Examples
    --------
    >>> lag_from({("ate.parametric", 0): 120, ("ate.parametric", 1): 7},
    ...          {("ate.parametric", 0): 100, ("ate.parametric", 1): 9})
    {('ate.parametric', 0): 20, ('ate.parametric', 1): 0}
    >>> lag_from({"p0": 5}, {"p0": None})
    {}
    """
    return {key: max(0, end - position) for key, end in end_offsets.items()
            if (position := positions.get(key)) is not None}


def _checked(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(allowed)}")
    return value


def _library_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """The metrics of DESIGN §8, registered in ``registry`` (a fresh one if None).

    Counters are named without ``_total``: prometheus-client adds it on exposition, so
    ``records`` below is exposed as ``stream_al_records_total``.

    Parameters
    ----------
    registry
        Where to register; pass a fresh ``CollectorRegistry()`` per test or per daemon.

    Examples
    --------
    >>> from prometheus_client import CollectorRegistry
    >>> registry = CollectorRegistry()
    >>> metrics = Metrics(registry)
    >>> metrics.observe_record("parametric", "queried")
    >>> registry.get_sample_value("stream_al_records_total",
    ...                           {"kind": "parametric", "outcome": "queried"})
    1.0
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._create_counters()
        self._create_gauges()
        self._create_histograms()
        self._model_label_totals: dict[str, int] = {}
        #: Children of the labelled counters, by (counter, *label values).
        self._children: dict[tuple[str, ...], Counter] = {}
        self._describe_build()
        self._preregister()

    # -- records and queries -------------------------------------------------------------

    # The observe_* methods run for every record: each series' child is looked up once
    # (``labels()`` checks, converts and locks on every call) and kept in ``_children``.

    def observe_record(self, kind: str, outcome: str) -> None:
        """Count one consumed record by ``kind`` and ``outcome`` (RECORD_KINDS, RECORD_OUTCOMES)."""
        child = self._children.get(("records", kind, outcome))
        if child is None:  # every valid pair was registered up front: this raises
            child = self.records.labels(_checked(kind, RECORD_KINDS, "record kind"),
                                        _checked(outcome, RECORD_OUTCOMES, "record outcome"))
        child.inc()

    def observe_query(self, model_key: str, reason: str) -> None:
        """Count one oracle request of ``model_key`` sent for ``reason`` (uncertainty, audit, …)."""
        child = self._children.get(("queries", model_key, reason))
        if child is None:
            self._add_model_key(model_key)
            child = self.queries.labels(model_key, _checked(reason, REASONS, "query reason"))
        child.inc()

    def observe_query_skip(self, reason: str) -> None:
        """Count a record the gate chose but that was not queried (QUERY_SKIP_REASONS)."""
        child = self._children.get(("query_skips", reason))
        if child is None:
            child = self.query_skips.labels(_checked(reason, QUERY_SKIP_REASONS, "query skip"))
        child.inc()

    def observe_uncertainty(self, uncertainty: float) -> None:
        """Record the uncertainty u ∈ [0, 1] the gate saw for one record."""
        self.uncertainty.observe(uncertainty)

    def observe_processing(self, seconds: float) -> None:
        """Record the time one record took from bytes to decision."""
        self.processing.observe(seconds)

    # -- labels and dead letters -----------------------------------------------------

    def observe_label(self, outcome: str, latency_s: float | None) -> None:
        """Count one label by ``outcome`` (LABEL_OUTCOMES); observe its latency if known.

        ``latency_s`` is the time from the query to its label; None when the label
        could not be joined with a query (then there is nothing to measure).
        """
        child = self._children.get(("labels", outcome))
        if child is None:
            child = self.labels_consumed.labels(_checked(outcome, LABEL_OUTCOMES, "label outcome"))
        child.inc()
        if latency_s is not None:
            self.label_latency.observe(max(0.0, latency_s))

    def observe_dead_letter(self, reason_code: str) -> None:
        """Count one message sent to the DLQ under a DEAD_LETTER_REASONS code.

        An unlisted code counts as ``other``: bad input must never crash the daemon,
        and free text must never become a label value.
        """
        child = self._children.get(("dead_letters", reason_code)) or \
            self._children[("dead_letters", "other")]
        child.inc()

    # -- state published after each batch ------------------------------------------------

    def set_model_state(self, model_key: str, *, threshold: float, queried_fraction: float,
                        budget_fraction: float, accuracies: Mapping[Window, float | None],
                        labels: int) -> None:
        """Publish one model's gate, budget and accuracy state.

        Parameters
        ----------
        model_key
            The model (e.g. a product).
        threshold
            The gate's current uncertainty threshold θ.
        queried_fraction, budget_fraction
            û, the estimated share of recent records queried, and B, the budget. The
            gauge holds û / B: 1.0 means the model spends exactly its budget.
        accuracies
            Rolling accuracy per window (queried, audit, inline); None while a window
            has no labels yet, which leaves its series absent rather than at 0.
        labels
            Labels this model has learnt in total; the counter only ever moves up, so a
            restore to an older checkpoint does not count the replayed labels twice.
        """
        self._add_model_key(model_key)
        self.threshold.labels(model_key).set(threshold)
        self.budget_spent.labels(model_key).set(_spent_ratio(queried_fraction, budget_fraction))
        for window, accuracy in accuracies.items():
            if accuracy is not None:
                self.accuracy.labels(model_key, _checked(window, WINDOWS, "window")).set(accuracy)
        self._advance_label_total(model_key, labels)

    def set_pending_queries(self, count: int) -> None:
        """Publish the number of queries sent and not yet answered or expired."""
        self.pending.set(count)

    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None:
        """Publish the records left to read on one assigned partition (see ``lag_from``)."""
        self.consumer_lag.labels(topic, str(partition)).set(lag)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop the lag of a partition this replica no longer owns (after a rebalance)."""
        try:
            self.consumer_lag.remove(topic, str(partition))
        except KeyError:
            pass  # never published: nothing to forget

    def mark_checkpoint(self, timestamp_s: float) -> None:
        """Record when the last checkpoint was written (Unix time, seconds)."""
        self.last_checkpoint.set(timestamp_s)

    # -- construction ----------------------------------------------------------------

    def _create_counters(self) -> None:
        registry = self.registry
        self.records = Counter("stream_al_records", "Records consumed, by kind and outcome.",
                               ["kind", "outcome"], registry=registry)
        self.queries = Counter("stream_al_queries", "Oracle requests sent, by model and reason.",
                               ["model_key", "reason"], registry=registry)
        self.labels_consumed = Counter("stream_al_labels", "Labels consumed, by outcome.",
                                       ["outcome"], registry=registry)
        self.model_labels = Counter("stream_al_model_labels", "Labels learnt, per model.",
                                    ["model_key"], registry=registry)
        self.query_skips = Counter("stream_al_query_skips",
                                   "Records the gate chose but that were not queried, by why.",
                                   ["reason"], registry=registry)
        self.dead_letters = Counter("stream_al_dead_letters",
                                    "Messages sent to the dead-letter topic, by reason code.",
                                    ["reason"], registry=registry)

    def _create_gauges(self) -> None:
        registry = self.registry
        self.pending = Gauge("stream_al_pending_queries",
                             "Queries sent and not yet answered or expired.", registry=registry)
        self.threshold = Gauge("stream_al_query_threshold",
                               "Current uncertainty threshold of the gate, per model.",
                               ["model_key"], registry=registry)
        self.budget_spent = Gauge("stream_al_budget_spent_ratio",
                                  "Share of recent records queried over the budget B "
                                  "(1 = spending exactly the budget), per model.",
                                  ["model_key"], registry=registry)
        self.accuracy = Gauge("stream_al_model_accuracy",
                              "Rolling accuracy per model and window (queried, audit, inline).",
                              ["model_key", "window"], registry=registry)
        self.consumer_lag = Gauge("stream_al_consumer_lag",
                                  "Records left to read, per assigned input partition.",
                                  ["topic", "partition"], registry=registry)
        self.last_checkpoint = Gauge("stream_al_last_checkpoint_timestamp_seconds",
                                     "Unix time of the last checkpoint written (0: none yet).",
                                     registry=registry)

    def _create_histograms(self) -> None:
        registry = self.registry
        self.label_latency = Histogram("stream_al_label_latency_seconds",
                                       "Time from an oracle request to its label.",
                                       buckets=LABEL_LATENCY_BUCKETS, registry=registry)
        self.uncertainty = Histogram("stream_al_uncertainty",
                                     "Uncertainty of each scored record, in [0, 1].",
                                     buckets=UNCERTAINTY_BUCKETS, registry=registry)
        self.processing = Histogram("stream_al_processing_seconds",
                                    "Time to process one record, bytes to decision.",
                                    buckets=PROCESSING_BUCKETS, registry=registry)

    def _describe_build(self) -> None:
        build = Info("stream_al_build", "Versions of stream-al, Python and River (value 1).",
                     registry=self.registry)
        build.info({"version": __version__, "python": platform.python_version(),
                    "river": _library_version("river")})

    def _preregister(self) -> None:
        children = self._children
        for kind in RECORD_KINDS:
            for outcome in RECORD_OUTCOMES:
                children["records", kind, outcome] = self.records.labels(kind, outcome)
        for label_outcome in LABEL_OUTCOMES:
            children["labels", label_outcome] = self.labels_consumed.labels(label_outcome)
        for code in DEAD_LETTER_REASONS:
            children["dead_letters", code] = self.dead_letters.labels(code)
        for skip in QUERY_SKIP_REASONS:
            children["query_skips", skip] = self.query_skips.labels(skip)

    def _add_model_key(self, model_key: str) -> None:
        if model_key not in self._model_label_totals:
            self._model_label_totals[model_key] = 0
            self.model_labels.labels(model_key)
            for reason in REASONS:
                self._children["queries", model_key, reason] = self.queries.labels(model_key,
                                                                                   reason)

    def _advance_label_total(self, model_key: str, total: int) -> None:
        published = self._model_label_totals[model_key]
        if total > published:
            self.model_labels.labels(model_key).inc(total - published)
            self._model_label_totals[model_key] = total


def _spent_ratio(queried_fraction: float, budget_fraction: float) -> float:
    if budget_fraction > 0:
        return queried_fraction / budget_fraction
    return 0.0 if queried_fraction == 0 else float("inf")
