"""The learner: decide on each record, learn from each label, snapshot everything.

``decide`` scores a record and asks the budget, then the gate, whether to query it;
``apply`` joins a label with its open query and learns it. All state (models, gates,
budget windows, pending queries, random generators) lives in this one object so a
snapshot restores it exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stream_al import uncertainty as measures
from stream_al.budget import BudgetConfig, BudgetManager
from stream_al.evaluation import ModelScores, Window
from stream_al.features import FeatureConfig, Features, extract
from stream_al.gates import Gate, GateConfig, make_gate
from stream_al.models import ModelConfig, member_probas, most_probable, stable_seed
from stream_al.novelty import NoveltyScorer
from stream_al.pending import PendingQueries
from stream_al.reasons import Reason
from stream_al.records import OracleLabel, OracleRequest, Prediction, Record, query_id_for
from stream_al.registry import ModelRegistry

CommitteeMeasure = Literal["vote_entropy", "consensus_kl"]
LabelOutcome = Literal["applied", "unknown_query", "expired", "duplicate", "invalid"]


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
    learn_inline_labels: bool = Field(
        False, description="learn from records that arrive labelled (single replica only)"
    )
    accuracy_window: int = Field(500, ge=1)
    seed: int = 0


@dataclass(frozen=True)
class Decision:
    """What the learner made of one record: always a prediction, sometimes a query."""

    model_key: str
    prediction: Prediction
    request: OracleRequest | None
    novelty: float | None
    inline_correct: bool | None


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


@dataclass
class ModelPolicy:
    """The per-model-key decision state beside the model itself."""

    gate: Gate
    rng: random.Random
    scores: ModelScores
    novelty: NoveltyScorer | None = None
    queries: dict[str, int] = field(default_factory=dict)


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

    # -- decisions -----------------------------------------------------------------

    def model_key_for(self, record: Record) -> str:
        name = self.config.model_key_field
        if record.kind == "transaction":
            value = record.categorical.get(name)
        else:
            value = getattr(record, name, None)
        return str(value) if value not in (None, "") else record.kind

    def decide(self, record: Record, now: datetime) -> Decision:
        """Score a record, choose whether to query it, and say so."""
        model_key = self.model_key_for(record)
        entry = self.registry.get(model_key)
        policy = self._policy(model_key)
        x = extract(record, self.config.features)
        proba = _clean(entry.model.predict_proba_one(dict(x)))
        predicted = most_probable(proba)
        u = self._uncertainty(proba, x, len(entry.class_counts), model_key)
        novelty = policy.novelty.score_then_learn(_measured(x)) if policy.novelty else None
        reason = self._choose(model_key, policy, u, novelty, now)
        request = self._request(record, model_key, reason, u, proba, predicted, now)
        inline = self._inline(record, model_key, policy, predicted, x)
        prediction = Prediction(
            record_id=record.record_id, model_key=model_key, predicted=predicted, proba=proba,
            uncertainty=u, queried=request is not None,
            query_id=request.query_id if request else None,
            model_version=entry.version, ts=now,
        )
        return Decision(model_key, prediction, request, novelty, inline)

    def _uncertainty(self, proba: dict[str, float], x: Features, known: int,
                     model_key: str) -> float:
        committee = self.config.committee_measure
        members = member_probas(self.registry.get(model_key).model, x) if committee else []
        if committee == "vote_entropy" and members:
            votes = [most_probable(_clean(p)) for p in members]
            return measures.vote_entropy([v for v in votes if v is not None], known)
        if committee == "consensus_kl" and members:
            return measures.consensus_kl(members, known)
        # A single model has no committee to disagree: its own distribution speaks.
        return measures.MEASURES[self.config.gate.measure](proba, known)

    def _choose(self, model_key: str, policy: ModelPolicy, u: float, novelty: float | None,
                now: datetime) -> Reason | None:
        t, pending = now.timestamp(), len(self.pending)
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
            reason = policy.gate.decide(u, novelty)
        budget.record(model_key, reason, t)
        if reason:
            policy.queries[reason] = policy.queries.get(reason, 0) + 1
        return reason

    def _request(self, record: Record, model_key: str, reason: Reason | None, u: float,
                 proba: dict[str, float], predicted: str | None,
                 now: datetime) -> OracleRequest | None:
        if reason is None:
            return None
        request = OracleRequest(
            query_id=query_id_for(record.record_id, model_key), record_id=record.record_id,
            kind=record.kind, model_key=model_key, reason=reason, uncertainty=u,
            threshold=self._policy(model_key).gate.threshold, proba=proba, predicted=predicted,
            model_version=self.registry.get(model_key).version, created_at=now,
            expires_at=now + timedelta(seconds=self.config.query_ttl_s), record=record,
        )
        self.pending.add(request)
        return request

    def _inline(self, record: Record, model_key: str, policy: ModelPolicy,
                predicted: str | None, x: Features) -> bool | None:
        if record.label is None:
            return None
        correct = policy.scores.update("inline", predicted, record.label)
        if self.config.learn_inline_labels:
            self.registry.get(model_key).learn(x, record.label)
        return correct

    # -- labels --------------------------------------------------------------------

    def accept_request(self, request: OracleRequest) -> bool:
        """Remember a request read back from the request log (any replica's)."""
        return self.pending.add(request)

    def apply(self, label: OracleLabel) -> LabelResult:
        """Join a label with its query and learn it exactly once."""
        qid = label.query_id
        if not label.label.strip():
            return LabelResult("invalid", qid, "label is empty; send the class name")
        join = self.pending.join(qid, label.labeled_at)
        request = join.request
        if join.outcome == "unknown_query":
            return LabelResult("unknown_query", qid, f"no open query {qid}: never asked, or "
                               "dropped long after it expired")
        if join.outcome == "duplicate":
            return LabelResult("duplicate", qid, f"query {qid} was already answered")
        assert request is not None
        latency = (label.labeled_at - request.created_at).total_seconds()
        if join.outcome == "expired":
            return LabelResult("expired", qid, f"query {qid} expired at "
                               f"{request.expires_at.isoformat()}; the label came at "
                               f"{label.labeled_at.isoformat()}", request.model_key,
                               request.reason, latency_s=latency)
        return self._learn(request, label.label, latency)

    def _learn(self, request: OracleRequest, label: str, latency: float) -> LabelResult:
        entry = self.registry.get(request.model_key)
        entry.learn(extract(request.record, self.config.features), label)
        window: Window = "audit" if request.reason == "audit" else "queried"
        correct = self._policy(request.model_key).scores.update(window, request.predicted, label)
        return LabelResult("applied", request.query_id, "learnt", request.model_key,
                           request.reason, correct, latency)

    # -- state ---------------------------------------------------------------------

    def _policy(self, model_key: str) -> ModelPolicy:
        policy = self.policies.get(model_key)
        if policy is None:
            seed = stable_seed(self.config.seed, "policy", model_key)
            novelty = None
            if self.config.gate.strategy == "hybrid":
                novelty = NoveltyScorer(seed=stable_seed(self.config.seed, "novelty", model_key))
            gate = make_gate(self.config.gate, seed, self.config.budget.fraction)
            policy = ModelPolicy(gate, random.Random(seed),
                                 ModelScores(self.config.accuracy_window), novelty)
            self.policies[model_key] = policy
        return policy

    def threshold(self, model_key: str) -> float:
        return self._policy(model_key).gate.threshold


def _measured(x: Features) -> Features:
    """The measured values only: derived flags (``@site=2``, ``@tester=…``) make a rare
    but ordinary site or tester look novel; on the simulated floor they took the novelty
    score's separation of the rare failure mode from AUC 0.63 to 0.47."""
    return {name: value for name, value in x.items() if not name.startswith("@")}


def _clean(proba: dict[object, float]) -> dict[str, float]:
    """River may return numpy floats or non-string class keys; messages want plain JSON."""
    return {str(label): float(p) for label, p in proba.items()}
