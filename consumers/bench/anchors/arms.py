"""The arms that need no extra package: all labels, random, River's ``EntropySampler``
and stream-al's own learner. The scikit-activeml arms live in ``skal``.

Every arm builds its model with ``stream_al.models.build_model`` from the same plain
River template, seeded from the run's seed and the model key exactly as the learner's
registry seeds it, so the arms differ only in which labels they ask for.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final, cast

from river import active, base, compose

from consumers.bench.anchors.harness import Arm, request_for
from consumers.bench.anchors.streams import MODEL_KEY, Config, Item
from stream_al.budget import BudgetConfig
from stream_al.gates import GateConfig
from stream_al.learner import Decision, Learner, LearnerConfig
from stream_al.models import build_model, most_probable, stable_seed
from stream_al.records import OracleLabel, OracleRequest, query_id_for

#: stream-al's strategies, each run through its own ``Learner``.
#: stream-al's strategies on the default (rank) scale, and the paper's variable
#: uncertainty on u itself: the rule the default replaced, measured in the same run.
STREAM_AL: Final = ("random", "fixed", "variable", "randomized", "hybrid", "variable-raw")


def plain_model(config: Config, seed: int) -> compose.Pipeline:
    """The run's model, as the learner's registry would build it for these records."""
    return build_model(config.model_config, stable_seed(seed, MODEL_KEY))


def predicted_class(proba: Mapping[Any, float]) -> str | None:
    """The learner's rule (most probable, ties by name) on River's distribution."""
    return most_probable({str(label): float(p) for label, p in proba.items()})


class _ModelArm:
    """An arm whose model is a bare River pipeline; subclasses choose the queries."""

    name = "model"

    def __init__(self, config: Config, seed: int) -> None:
        self.model = plain_model(config, seed)
        self._predicted: str | None = None

    def step(self, index: int, item: Item) -> tuple[str | None, bool]:
        proba = self.model.predict_proba_one(dict(item.x))
        self._predicted = predicted_class(proba)
        return self._predicted, self.wants(proba)

    def wants(self, proba: Mapping[Any, float]) -> bool:
        raise NotImplementedError

    def commit(self, index: int, item: Item, asked: bool) -> OracleRequest | None:
        return request_for(item, self.name, self._predicted) if asked else None

    def learn(self, label: OracleLabel, item: Item) -> None:
        self.model.learn_one(dict(item.x), label.label)


class AllLabels(_ModelArm):
    """The reference: every record's label, as soon as the oracle gives it."""

    name = "all"

    def wants(self, proba: Mapping[Any, float]) -> bool:
        return True


class RandomArm(_ModelArm):
    """Each record asked for with probability B, whatever the model says."""

    name = "random"

    def __init__(self, config: Config, seed: int, budget: float) -> None:
        super().__init__(config, seed)
        self.budget = budget
        self.rng = random.Random(stable_seed(seed, "random-arm"))

    def wants(self, proba: Mapping[Any, float]) -> bool:
        return self.rng.random() < self.budget


class EntropyArm(_ModelArm):
    """River's ``active.EntropySampler`` around the same model: it asks with probability
    (normalised entropy) ** ``discount_factor``. It has no budget of its own, so the
    factor is bisected to spend B (``bisect``)."""

    name = "river-entropy"

    def __init__(self, config: Config, seed: int, discount_factor: float) -> None:
        super().__init__(config, seed)
        # A pipeline ending in a classifier is a classifier; River's types do not say so.
        classifier = cast(base.Classifier, self.model)
        self.sampler = active.EntropySampler(classifier, discount_factor=discount_factor,
                                             seed=stable_seed(seed, "entropy-arm"))

    def step(self, index: int, item: Item) -> tuple[str | None, bool]:
        proba, ask = self.sampler.predict_proba_one(dict(item.x))
        self._predicted = predicted_class(proba)
        return self._predicted, bool(ask)

    def learn(self, label: OracleLabel, item: Item) -> None:
        self.sampler.learn_one(dict(item.x), label.label)


class StreamAlArm:
    """stream-al's ``Learner`` with one of its strategies, its default gate and budget
    settings (no audit share, as in ``bench labels``), on the same plain model."""

    def __init__(self, config: Config, seed: int, budget: float, strategy: str) -> None:
        self.name = f"stream-al:{strategy}"
        self.learner = Learner(LearnerConfig(
            model=config.model_config, seed=seed,
            budget=BudgetConfig(fraction=budget, audit_fraction=0.0),
            gate=gate_settings(strategy)))
        self._decision: Decision | None = None

    def step(self, index: int, item: Item) -> tuple[str | None, bool]:
        self._decision = self.learner.decide(item.record, item.record.ts)
        return self._decision.prediction.predicted, self._decision.request is not None

    def commit(self, index: int, item: Item, asked: bool) -> OracleRequest | None:
        decision = self._decision
        assert decision is not None
        if not asked:
            # Refused by the hard budget: the learner's window counts each cold-start
            # record twice (below), so its own bound can run a label ahead. The query is
            # charged and never answered, as a real one the oracle drops would be.
            return None
        if decision.request is not None:
            return decision.request
        return self._cold_start(item, decision)

    def _cold_start(self, item: Item, decision: Decision) -> OracleRequest:
        """Ask for a record the learner did not choose: the learner takes the request as
        its own (so the label is learnt through ``apply``) and its budget is charged."""
        record, now, key = item.record, item.record.ts, decision.model_key
        prediction = decision.prediction
        request = OracleRequest(
            query_id=query_id_for(record.record_id, key), record_id=record.record_id,
            kind=record.kind, model_key=key, reason="warmup",
            uncertainty=prediction.uncertainty, threshold=self.learner.threshold(key),
            proba=prediction.proba, predicted=prediction.predicted,
            model_version=prediction.model_version, created_at=now,
            expires_at=now + timedelta(seconds=self.learner.config.query_ttl_s),
            record=record)
        self.learner.accept_request(request)
        # One more query in the budget window; the record itself was already counted as
        # not queried by ``decide``, so the window sees one extra entry per cold-start label.
        self.learner.budget.record(key, "warmup", now.timestamp())
        return request

    def learn(self, label: OracleLabel, item: Item) -> None:
        outcome = self.learner.apply(label).outcome
        assert outcome == "applied", f"the learner refused a label: {outcome}"


def gate_settings(arm: str) -> GateConfig:
    """The gate of a stream-al arm: ``<strategy>`` or ``<strategy>-raw``, defaults else."""
    strategy, _, scale = arm.partition("-")
    return GateConfig.model_validate({"strategy": strategy, "scale": scale or "rank"})


def stream_al_arms(config: Config, seed: int, budget: float) -> list[Arm]:
    return [StreamAlArm(config, seed, budget, strategy) for strategy in STREAM_AL]
