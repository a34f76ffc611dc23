"""The learner: decide on each record, learn from each label, snapshot everything.

``decide`` scores a record and asks the budget, then the gate, whether to query it;
``apply`` joins a label with its open query and learns it. All state (models, gates,
budget windows, pending queries, random generators) lives in this one object so a
snapshot restores it exactly.
"""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stream_al import uncertainty as measures
from stream_al.budget import BudgetConfig, BudgetManager
from stream_al.class_prior import ClassPrior
from stream_al.codec import encode
from stream_al.diversity import RecentQueries
from stream_al.errors import Refused
from stream_al.evaluation import ModelScores, Window
from stream_al.features import FeatureConfig, Features, extract, extractor
from stream_al.gates import Gate, GateConfig, make_gate
from stream_al.limits import Limits
from stream_al.models import (
    ModelConfig,
    decision_path,
    influences,
    member_probas,
    most_probable,
    stable_seed,
)
from stream_al.novelty import Novelty, make_novelty, measured_only
from stream_al.pending import PendingQueries
from stream_al.presence import Presence
from stream_al.reasons import Reason
from stream_al.records import (
    MAX_INFLUENCES,
    Influence,
    OracleLabel,
    OracleRequest,
    ParametricRecord,
    Prediction,
    Record,
    query_id_for,
)
from stream_al.registry import ModelEntry, ModelRegistry

CommitteeMeasure = Literal["vote_entropy", "consensus_kl"]
#: One influence as JSON, at most: a 256-character name, a number and a 64-character test.
_INFLUENCE_BYTES = 400
LabelOutcome = Literal["applied", "unknown_query", "expired", "duplicate", "invalid"]
#: A request's fields besides its record, with ``prediction_top_k`` classes: a bound,
#: so the record's own encoded size decides whether its request fits.
_REQUEST_ENVELOPE_BYTES = 4096 + MAX_INFLUENCES * _INFLUENCE_BYTES
_CLASS_ENTRY_BYTES = 300
#: Learning from a reading this large is snapshotted first, so a model that turns
#: non-finite can be put back; ordinary readings skip the cost (an ARF is 7 MB to copy).
_RISKY_ABS_VALUE = 1e6
#: Shorter runs are decided one record at a time: the matrices' set-up would cost more.
_MIN_RUN = 8


class LearnerConfig(BaseModel):
    """Everything that shapes decisions and learning (not I/O)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelConfig = ModelConfig()
    gate: GateConfig = GateConfig()
    budget: BudgetConfig = BudgetConfig()
    features: FeatureConfig = FeatureConfig()
    model_key_field: str = Field(
        "product",
        description="record field naming the model (parametric attribute or transaction "
        "categorical); records without it share a model named after their kind",
    )
    committee_measure: CommitteeMeasure | None = Field(
        None, description="with an ensemble template (arf): vote_entropy or consensus_kl "
        "over its members instead of gate.measure on the averaged distribution")
    warmup_min_labels_per_class: int = Field(5, ge=1)
    warmup_max_labels: int = Field(100, ge=1)
    query_ttl_s: float = Field(86_400.0, gt=0, description="how long an engineer may take")
    pending_capacity: int = Field(100_000, ge=1)
    min_measured_share: float = Field(
        0.2, ge=0.0, le=1.0, description="parametric records with fewer of their tests "
        "measured than this share are not queried for uncertainty (audits and warm-up may "
        "still pick them); 0 turns it off")
    learn_inline_labels: bool = Field(
        False, description="learn from records that arrive labelled (single replica only)"
    )
    accuracy_window: int = Field(500, ge=1)
    # 0.5 by default: on the imbalanced floor streams it lifts balanced accuracy above
    # random and scikit-activeml on every one, and on the 14 anchors it changes mean
    # accuracy by nothing (docs/benchmarks.md, "The predicted class under imbalance").
    prior_correction: float = Field(
        0.5, ge=0.0, le=1.0, description="γ: predict the class maximising p(c|x)/π(c)^γ, "
        "π being the model's mean predicted distribution over its recent records; 0 is the "
        "most probable class, 1 the rule that maximises balanced accuracy (fewer escapes, "
        "more overkill), 0.5 halfway")
    prior_window: int = Field(500, ge=10, description="records π is averaged over")
    rare_class_replay: float = Field(
        0.0, ge=0.0, le=1.0, description="α: a label of class c is learnt "
        "round((n_most / n_c)^α) times (at most rare_class_replay_max), n being the labels "
        "learnt per class, so the rare class is not drowned; 0 learns every label once")
    rare_class_replay_max: int = Field(8, ge=1, le=64)
    limits: Limits = Limits()
    seed: int = 0


@dataclass(frozen=True)
class Decision:
    """What the learner made of one record: always a prediction, sometimes a query."""

    model_key: str
    prediction: Prediction
    request: OracleRequest | None
    novelty: float | None
    inline_correct: bool | None
    #: Why the gate's choice was not asked (QUERY_SKIP_REASONS), else None.
    skipped: str | None = None


@dataclass(frozen=True)
class LabelResult:
    """What became of one label; never an exception, whatever the label says."""

    outcome: LabelOutcome
    query_id: str
    detail: str
    model_key: str | None = None
    reason: Reason | None = None
    correct: bool | None = None
    latency_s: float | None = None


@dataclass(frozen=True)
class Prepared:
    """What a run worked out for one of its records (None: ``decide`` works it out)."""

    proba: dict[Any, float] | None
    share: float | None


@dataclass
class ModelPolicy:
    """The per-model-key decision state beside the model itself."""

    gate: Gate
    rng: random.Random
    scores: ModelScores
    novelty: Novelty | None = None
    queries: dict[str, int] = field(default_factory=dict)
    #: None until the first prediction that needs it (and in checkpoints from before it).
    prior: ClassPrior | None = None
    #: How often each measurement has a value in this model's records (None: as above).
    presence: Presence | None = None
    #: The model's last queries, for ``gate.diversity`` (None while it is off).
    recent: RecentQueries | None = None


class Learner:
    """Pure decision and learning logic over records and labels.

    >>> from datetime import datetime, timezone
    >>> from stream_al.simulate.floor import FloorSimulator, FloorConfig
    >>> learner = Learner(LearnerConfig())
    >>> sim = next(FloorSimulator(FloorConfig(), seed=1).stream(1))
    >>> from stream_al.records import ParametricRecord
    >>> record = ParametricRecord.model_validate(sim.record)
    >>> decision = learner.decide(record, now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    >>> decision.prediction.record_id == record.record_id
    True
    """

    def __init__(self, config: LearnerConfig) -> None:
        self.config = config
        self.registry = ModelRegistry(config.model, config.seed)
        self.budget = BudgetManager(config.budget)
        self.pending = PendingQueries(config.pending_capacity)
        self.policies: dict[str, ModelPolicy] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A checkpoint pickles the settings it was written with. One written before a
        # setting existed lacks it, and pydantic then raises on the first read: rebuild
        # the settings from what the pickle holds, the missing ones at their defaults.
        config = state.get("config")
        if isinstance(config, BaseModel):
            state["config"] = LearnerConfig.model_validate(_fields_of(config))
        self.__dict__.update(state)

    def adopt(self, config: LearnerConfig) -> list[str]:
        """Take ``config`` (the settings the daemon runs with now) in place of those the
        checkpoint was written with, so a setting changed in the config file takes
        effect at the next start; returns the changed settings' dotted names.

        What has been learnt stays: models, labels, open queries and every model's
        scores. A changed budget starts counting afresh from now (⌈B·t⌉ + 1 from the
        restart), a changed gate or budget gives every model a fresh gate of the new
        kind, and a changed model template applies to model keys seen from now on,
        since a model cannot change its kind and keep what it knows."""
        changed = sorted(_differences(self.config.model_dump(), config.model_dump()))
        self.config = config
        self.registry.config = config.model
        self.pending.capacity = config.pending_capacity
        if any(name.startswith("budget.") for name in changed):
            self.budget = BudgetManager(config.budget)
        else:  # the same values, in a settings object that knows every current field
            self.budget.config = BudgetConfig.model_validate(config.budget.model_dump())
        if any(name.startswith(("gate.", "budget.")) for name in changed):
            for key, policy in self.policies.items():
                seed = stable_seed(config.seed, "policy", key)
                policy.gate = make_gate(config.gate, seed, config.budget.fraction)
                if config.gate.strategy != "hybrid":
                    policy.novelty = None
                elif policy.novelty is None or "gate.novelty" in changed:
                    policy.novelty = make_novelty(config.gate.novelty,
                                                  stable_seed(config.seed, "novelty", key))
        return changed

    # -- decisions -----------------------------------------------------------------

    def model_key_for(self, record: Record) -> str:
        name = self.config.model_key_field
        if record.kind == "transaction":
            value = record.categorical.get(name)
        else:
            value = getattr(record, name, None)
        return str(value) if value not in (None, "") else record.kind

    def decide(self, record: Record, now: datetime, ready: Prepared | None = None
               ) -> Decision:
        """Score a record, choose whether to query it, and say so.

        ``ready`` carries what ``decide_each`` computed for a whole run of records
        (``decide`` works it out itself where it is None or a field is None).

        Raises :class:`Refused` for a model key beyond ``limits`` (nothing changes then),
        and :class:`ValueError` when the model's distribution is not finite.
        """
        model_key = self._admitted_key(record)
        entry = self.registry.get(model_key)
        policy = self._policy(model_key)
        # Presence first: it counts every admitted record, whatever becomes of it, so a
        # run's shares (computed before any of its records is decided) are the same.
        share = ready.share if ready is not None and ready.share is not None \
            else self._measured_share(policy, record)
        given = ready.proba if ready is not None else None
        # Most records need no feature dictionary once the run has scored them: only a
        # query, a committee, novelty, diversity or an inline label reads it.
        x = extract(record, self.config.features) \
            if given is None or self._reads_features(policy, record) else None
        proba = _finite(_clean(given if given is not None else
                               entry.predict_proba(_features(x))), model_key)
        predicted = self._predicted(policy, proba)
        u = self._uncertainty(proba, x, len(entry.class_counts), model_key)
        novelty = policy.novelty.score_then_learn(measured_only(_features(x))) \
            if policy.novelty else None
        shown = _top(proba, self.config.limits.prediction_top_k)
        reason, skipped = self._choose(model_key, policy, self._diverse(policy, u, x),
                                       novelty, now,
                                       fits=lambda: self._request_fits(record),
                                       informative=share >= self.config.min_measured_share)
        if reason is not None and x is None:
            x = extract(record, self.config.features)
        request = self._request(record, model_key, reason, u, shown, predicted, now, x)
        if request is not None and policy.recent is not None:
            policy.recent.remember(_features(x))
        inline = self._inline(record, model_key, policy, predicted, x)
        prediction = Prediction(
            record_id=record.record_id, model_key=model_key, predicted=predicted, proba=shown,
            uncertainty=u, queried=request is not None,
            query_id=request.query_id if request else None,
            model_version=entry.version, ts=now,
        )
        return Decision(model_key, prediction, request, novelty, inline, skipped)

    def decide_each(self, records: Sequence[Record], now: datetime
                    ) -> Iterator[Decision | Exception]:
        """``decide`` for each record in order, with the same outcome as one call per
        record: an exception ``decide`` would raise is yielded in that record's place.

        A poll batch interleaves a few products. A model's parametric records with one
        test list (``_runs``) have their presence shares and, with the logistic template,
        their distributions computed together, as matrices, when the run's first record
        comes up. Nothing decided meanwhile moves those: they are per model, no label is
        learnt inside a batch, and the model's other records end its run. So each record
        gets what its own call would find, but for the order of the sums in its
        distribution (to 1e-12, ``tests/unit/test_runs.py``); every decision is still
        taken one record at a time, in order.
        """
        starts = {run[0]: run for run in _runs(records, self.model_key_for)}
        prepared: dict[int, Prepared] = {}
        for at, record in enumerate(records):
            if at in starts:
                prepared.update(self._prepare(records, starts[at]))
            try:
                yield self.decide(record, now, prepared.pop(at, None))
            except Exception as error:  # noqa: BLE001 - the caller contains each record
                yield error

    def _prepare(self, records: Sequence[Record], run: list[int]) -> dict[int, Prepared]:
        """The shares and distributions of one run, by record index ({}: each record
        works its own out, as for a model not created yet)."""
        batch = [cast(ParametricRecord, records[at]) for at in run]
        key = self.model_key_for(batch[0])
        if key not in self.registry or key not in self.policies:
            return {}
        names = tuple(batch[0].measurements)
        values = np.array([list(r.measurements.values()) for r in batch], dtype=np.float64)
        has = values == values  # NaN, and None made NaN, is no value
        presence = self.policies[key].presence
        shares = presence.shares_then_learn(names, has) if presence is not None else None
        probas: list[dict[Any, float] | None] = [None] * len(batch)
        scorer = self.registry.get(key).scorer()
        if scorer is not None:
            features = extractor(self.config.features)
            try:
                probas = scorer.predict_proba_rows(features.columns(names), values, has,
                                                   [features.derived(r) for r in batch])
            except (ArithmeticError, ValueError, TypeError):  # each record scores itself
                probas = [None] * len(batch)
        return {at: Prepared(proba, None if shares is None else shares[i])
                for i, (at, proba) in enumerate(zip(run, probas, strict=True))}

    def _reads_features(self, policy: ModelPolicy, record: Record) -> bool:
        return bool(self.config.committee_measure or policy.novelty is not None
                    or self.config.gate.diversity or record.label is not None)

    def _diverse(self, policy: ModelPolicy, u: float, x: Features | None) -> float:
        """u as the gate sees it: discounted by how like the last queries the record is."""
        delta = self.config.gate.diversity
        if not delta:
            return u
        if policy.recent is None:
            policy.recent = RecentQueries()
        policy.recent.observe(_features(x))
        return u * (1.0 - delta * policy.recent.nearness(_features(x)))

    def _measured_share(self, policy: ModelPolicy, record: Record) -> float:
        """The share of a parametric record's usual values it has (1.0 for transactions):
        each measurement counts by how often this model's records have it."""
        if record.kind != "parametric":
            return 1.0
        if policy.presence is None:
            policy.presence = Presence(self.config.limits.max_features_per_model)
        return policy.presence.share_then_learn(record.measurements)

    def _predicted(self, policy: ModelPolicy, proba: dict[str, float]) -> str | None:
        gamma = self.config.prior_correction
        if not gamma:
            return most_probable(proba)
        if policy.prior is None:
            policy.prior = ClassPrior(self.config.prior_window)
        return policy.prior.corrected(proba, gamma)

    def _admitted_key(self, record: Record) -> str:
        """The record's model key, if a model may exist for it (``limits``)."""
        key, limits = self.model_key_for(record), self.config.limits
        if key in self.registry:
            return key
        if not limits.allows_key(key):
            raise Refused(f"model key {key!r} does not match learner.limits.model_key_pattern "
                          f"({limits.model_key_pattern}); fix the record's "
                          f"{self.config.model_key_field} or widen the pattern")
        if len(self.registry) >= limits.max_model_keys:
            raise Refused(f"model key {key!r} would be model {len(self.registry) + 1}, beyond "
                          f"learner.limits.max_model_keys ({limits.max_model_keys}); raise it "
                          "if the floor really runs that many products")
        return key

    def _request_fits(self, record: Record) -> bool:
        limits = self.config.limits
        envelope = _REQUEST_ENVELOPE_BYTES + _CLASS_ENTRY_BYTES * limits.prediction_top_k
        return len(encode(record)) + envelope <= limits.max_request_bytes

    def _uncertainty(self, proba: dict[str, float], x: Features | None, known: int,
                     model_key: str) -> float:
        committee = self.config.committee_measure
        members = member_probas(self.registry.get(model_key).model, _features(x)) \
            if committee else []
        if committee == "vote_entropy" and members:
            votes = [most_probable(_clean(p)) for p in members]
            return measures.vote_entropy([v for v in votes if v is not None], known)
        if committee == "consensus_kl" and members:
            return measures.consensus_kl(members, known)
        # A single model has no committee to disagree: its own distribution speaks.
        return measures.MEASURES[self.config.gate.measure](proba, known)

    def _choose(self, model_key: str, policy: ModelPolicy, u: float, novelty: float | None,
                now: datetime, fits: Callable[[], bool], informative: bool = True,
                ) -> tuple[Reason | None, str | None]:
        t, pending = now.timestamp(), self.pending.live_count(now)
        skipped: str | None = None
        budget, entry = self.budget, self.registry.get(model_key)
        reason: Reason | None = None
        if policy.rng.random() < budget.config.audit_fraction:
            # An audit is a uniform sample: drawn before the gate sees the record.
            reason = "audit" if budget.may_query(model_key, "audit", t, pending) else None
        elif not entry.is_warm(self.config.warmup_min_labels_per_class,
                               self.config.warmup_max_labels):
            if policy.rng.random() < budget.config.fraction:
                reason = "warmup" if budget.may_query(model_key, "warmup", t, pending) else None
        elif budget.may_query(model_key, "uncertainty", t, pending):
            if informative:
                reason = policy.gate.decide(u, novelty)
            else:
                # A record that carries almost nothing (a flow that stopped before any
                # parametric test) is maximally uncertain and would always be asked, yet
                # its label teaches little. Audits and warm-up above still sample it.
                skipped = "little_data"
        if reason is not None and not fits():
            # Its request would not fit the requests topic: predicted, never asked, and
            # no budget spent on it.
            reason, skipped = None, "too_large"
        budget.record(model_key, reason, t)
        if reason:
            policy.queries[reason] = policy.queries.get(reason, 0) + 1
        return reason, skipped

    def _request(self, record: Record, model_key: str, reason: Reason | None, u: float,
                 proba: dict[str, float], predicted: str | None,
                 now: datetime, x: Features | None) -> OracleRequest | None:
        if reason is None:
            return None
        model = self.registry.get(model_key).model
        request = OracleRequest(
            influences=_influences(model, _features(x), predicted),
            query_id=query_id_for(record.record_id, model_key), record_id=record.record_id,
            kind=record.kind, model_key=model_key, reason=reason, uncertainty=u,
            threshold=self._policy(model_key).gate.threshold, proba=proba, predicted=predicted,
            model_version=self.registry.get(model_key).version, created_at=now,
            expires_at=now + timedelta(seconds=self.config.query_ttl_s), record=record,
        )
        self.pending.add(request)
        return request

    def _inline(self, record: Record, model_key: str, policy: ModelPolicy,
                predicted: str | None, x: Features | None) -> bool | None:
        if record.label is None:
            return None
        correct = policy.scores.update("inline", predicted, record.label)
        if self.config.learn_inline_labels:
            self.registry.get(model_key).learn(_features(x), record.label)
        return correct

    # -- labels --------------------------------------------------------------------

    def accept_request(self, request: OracleRequest) -> bool:
        """Remember a request read back from the request log (any replica's)."""
        return self.pending.add(request)

    def apply(self, label: OracleLabel, received_at: datetime | None = None) -> LabelResult:
        """Join a label with its query and learn it exactly once.

        ``received_at`` is when the label log took the label (the broker's append time):
        expiry and latency are judged on it, not on ``labeled_at``, which the sender
        chooses. Without it (in memory) ``labeled_at`` stands in.
        """
        qid, at = label.query_id, received_at or label.labeled_at
        if not label.label.strip():
            return LabelResult("invalid", qid, "label is empty; send the class name")
        self.pending.drop_expired(at, grace_s=self.config.query_ttl_s)
        join = self.pending.join(qid, at)
        request = join.request
        if join.outcome == "unknown_query":
            return LabelResult("unknown_query", qid, f"no open query {qid}: never asked, or "
                               "dropped long after it expired")
        if join.outcome == "duplicate":
            return LabelResult("duplicate", qid, f"query {qid} was already answered")
        assert request is not None
        latency = (at - request.created_at).total_seconds()
        if join.outcome == "expired":
            return LabelResult("expired", qid, f"query {qid} expired at "
                               f"{request.expires_at.isoformat()}; the label came at "
                               f"{at.isoformat()}", request.model_key,
                               request.reason, latency_s=latency)
        return self._learn(request, label.label, latency)

    def _learn(self, request: OracleRequest, label: str, latency: float) -> LabelResult:
        entry = self.registry.get(request.model_key)
        x = extract(request.record, self.config.features)
        refusal = self._refusal(entry, request, x, label)
        if refusal is not None:
            return LabelResult("invalid", request.query_id, refusal, request.model_key,
                               request.reason, latency_s=latency)
        risky = any(v is not None and math.isfinite(v) and abs(v) > _RISKY_ABS_VALUE
                    for v in x.values())
        before = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL) if risky else None
        entry.learn(x, label, self._repeats(entry, label))
        if not _predicts_finitely(entry, x):
            self.registry.replace(request.model_key, pickle.loads(before) if before  # noqa: S301
                                  else None)
            kept = "the model is as it was before" if before else "the model was reset"
            return LabelResult("invalid", request.query_id, f"learning this label made model "
                               f"{request.model_key!r} non-finite (extreme readings?); {kept}",
                               request.model_key, request.reason, latency_s=latency)
        window: Window = "audit" if request.reason == "audit" else "queried"
        correct = self._policy(request.model_key).scores.update(window, request.predicted, label)
        return LabelResult("applied", request.query_id, "learnt", request.model_key,
                           request.reason, correct, latency)

    def _repeats(self, entry: ModelEntry, label: str) -> int:
        """How many times the classifier sees this label (``rare_class_replay``)."""
        alpha, counts = self.config.rare_class_replay, entry.class_counts
        if alpha <= 0 or not counts:
            return 1
        ratio = max(counts.values()) / (counts[label] + 1)
        return max(1, min(self.config.rare_class_replay_max, round(float(ratio ** alpha))))

    # -- state ---------------------------------------------------------------------

    def _policy(self, model_key: str) -> ModelPolicy:
        policy = self.policies.get(model_key)
        if policy is None:
            seed = stable_seed(self.config.seed, "policy", model_key)
            novelty = None
            if self.config.gate.strategy == "hybrid":
                novelty = make_novelty(self.config.gate.novelty,
                                       stable_seed(self.config.seed, "novelty", model_key))
            gate = make_gate(self.config.gate, seed, self.config.budget.fraction)
            policy = ModelPolicy(gate, random.Random(seed),
                                 ModelScores(self.config.accuracy_window), novelty)
            self.policies[model_key] = policy
        return policy

    def threshold(self, model_key: str) -> float:
        return self._policy(model_key).gate.threshold

    def _refusal(self, entry: ModelEntry, request: OracleRequest, x: Features,
                 label: str) -> str | None:
        """Why learning this label would take the model past ``limits``, if it would."""
        limits, key = self.config.limits, request.model_key
        if label not in entry.class_counts and \
                len(entry.class_counts) >= limits.max_classes_per_model:
            return (f"model {key!r} already knows {len(entry.class_counts)} classes "
                    f"(learner.limits.max_classes_per_model); {label!r} would be one more")
        new = len(x.keys() - entry.features)
        if new and len(entry.features) + new > limits.max_features_per_model:
            return (f"record {request.record_id} would take model {key!r} to "
                    f"{len(entry.features) + new} features, beyond "
                    f"learner.limits.max_features_per_model ({limits.max_features_per_model})")
        return None


def _features(x: Features | None) -> Features:
    if x is None:  # decide() extracts wherever _reads_features says a step reads them
        raise RuntimeError("a step read features that were not extracted")
    return x


def _runs(records: Sequence[Record], key_of: Callable[[Record], str]) -> list[list[int]]:
    """Indices of the runs among ``records``: per model key, consecutive unlabelled
    parametric records (other models' records may come between) naming the same tests
    in the same order. Any other record of that model ends its run, since deciding it
    moves what the run's later records would see. Runs shorter than ``_MIN_RUN`` are
    left out: their matrices would cost more than they save."""
    done: list[list[int]] = []
    open_runs: dict[str, tuple[tuple[str, ...], list[int]]] = {}
    for at, record in enumerate(records):
        key = key_of(record)
        if isinstance(record, ParametricRecord) and record.label is None \
                and record.measurements:
            names = tuple(record.measurements)
            current = open_runs.get(key)
            if current is not None and current[0] == names:
                current[1].append(at)
                continue
            if current is not None:
                done.append(current[1])
            open_runs[key] = (names, [at])
        elif key in open_runs:
            done.append(open_runs.pop(key)[1])
    done += [indices for _, indices in open_runs.values()]
    return sorted((run for run in done if len(run) >= _MIN_RUN), key=lambda run: run[0])


def _fields_of(model: Any) -> Any:
    """A pydantic object's values as plain data, read from its ``__dict__`` so that one
    unpickled from an older schema (lacking a field) can still be read."""
    if isinstance(model, BaseModel):
        return {name: _fields_of(value) for name, value in vars(model).items()}
    if isinstance(model, (list, tuple)):
        return [_fields_of(value) for value in model]
    if isinstance(model, dict):
        return {key: _fields_of(value) for key, value in model.items()}
    return model


def _differences(before: Any, after: Any, prefix: str = "") -> set[str]:
    """Dotted names of the settings whose values differ (a nested section by field)."""
    if isinstance(before, dict) and isinstance(after, dict):
        names = before.keys() | after.keys()
        return set().union(*(_differences(before.get(n), after.get(n), f"{prefix}{n}.")
                             for n in names)) if names else set()
    if isinstance(before, (list, tuple)) and isinstance(after, (list, tuple)):
        before, after = list(before), list(after)
    return set() if before == after else {prefix.rstrip(".")}


def _top(proba: dict[str, float], k: int) -> dict[str, float]:
    """The ``k`` most probable classes: 5,000 classes would not fit one message."""
    if len(proba) <= k:
        return proba
    return dict(sorted(proba.items(), key=lambda item: -item[1])[:k])


def _finite(proba: dict[str, float], model_key: str) -> dict[str, float]:
    if all(math.isfinite(p) for p in proba.values()):
        return proba
    raise ValueError(f"model {model_key!r} returned non-finite probabilities")


def _predicts_finitely(entry: ModelEntry, x: Features) -> bool:
    try:
        proba = entry.model.predict_proba_one(dict(x))
    except (ArithmeticError, ValueError):
        return False
    return all(math.isfinite(float(p)) for p in proba.values())


def _clean(proba: dict[object, float]) -> dict[str, float]:
    """River may return numpy floats or non-string class keys; messages want plain JSON."""
    return {str(label): float(p) for label, p in proba.items()}


def _influences(model: Any, x: Features, predicted: str | None) -> list[Influence] | None:
    """What pushed the prediction, for the engineer's card; None where the model cannot
    say. Advisory only: a model whose internals do not fit costs the card its list,
    never the record its query."""
    if predicted is None:
        return None
    try:
        found = [Influence(feature=name[:256], weight=weight)
                 for name, weight in influences(model, x, predicted, top=MAX_INFLUENCES)]
        if not found:  # a tree: the tests on this record's way to its leaf
            found = [Influence(feature=name[:256], weight=value, test=test)
                     for name, value, test in decision_path(model, x, top=MAX_INFLUENCES)]
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return found or None
