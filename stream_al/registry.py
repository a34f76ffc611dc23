"""One River model per model key, created from the template on first sight."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from river import compose

from stream_al.linear_scorer import LinearScorer
from stream_al.models import Features, ModelConfig, build_model, stable_seed


@dataclass
class ModelEntry:
    """A model and what it has learnt so far."""

    model: compose.Pipeline
    #: Labels learnt; also the model's version number in predictions and requests.
    version: int = 0
    class_counts: Counter[str] = field(default_factory=Counter)
    #: Every feature name learnt: the imputer fills each one on every later prediction,
    #: so their number is bounded (``Limits.max_features_per_model``).
    features: set[str] = field(default_factory=set)
    #: The model folded for prediction at ``version`` (None inside: not foldable).
    _scorer: tuple[int, LinearScorer | None] | None = field(default=None, repr=False,
                                                            compare=False)

    def __getstate__(self) -> dict[str, Any]:
        # Derived from the model: checkpoints stay as they were without it.
        return {name: value for name, value in self.__dict__.items() if name != "_scorer"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._scorer = None

    def scorer(self) -> LinearScorer | None:
        """The model folded at its current version, or None where it does not fold."""
        cached = self._scorer
        if cached is None or cached[0] != self.version:
            cached = self._scorer = (self.version, LinearScorer.compile(self.model))
        return cached[1]

    def predict_proba(self, x: Features) -> dict[Any, float]:
        """The model's distribution for ``x``: folded into one pass where the template
        allows (``stream_al.linear_scorer``), else the pipeline's own."""
        scorer = self.scorer()
        proba = scorer.predict_proba(x) if scorer is not None else None
        return proba if proba is not None else self.model.predict_proba_one(dict(x))

    def learn(self, x: Features, label: str, repeats: int = 1) -> None:
        """Learn one label; ``repeats`` > 1 shows the classifier the same example again
        (a rare class's weight), while the imputer and scaler learn it once: their
        statistics describe the records, not the classes."""
        self.model.learn_one(dict(x), label)
        if repeats > 1:
            transformed: dict[Any, Any] = dict(x)
            steps = list(self.model.steps.values())
            for step in steps[:-1]:
                transformed = step.transform_one(transformed)
            for _ in range(repeats - 1):
                steps[-1].learn_one(transformed, label)
        self.version += 1
        self.class_counts[label] += 1
        self.features.update(x)

    def is_warm(self, min_labels_per_class: int, max_warmup_labels: int) -> bool:
        """True once two classes each have enough labels, or warm-up has cost enough.

        The cap matters on a floor where one class is very rare: without it warm-up
        would spend the whole budget at random waiting for the rare class.
        """
        if self.version >= max_warmup_labels:
            return True
        enough = [c for c in self.class_counts.values() if c >= min_labels_per_class]
        return len(enough) >= 2


class ModelRegistry:
    """Creates models lazily, each seeded from the base seed and its key.

    Seeding by key (not by creation order) makes every replica build the same model
    for a key, whichever record or label happened to create it first.

    >>> registry = ModelRegistry(ModelConfig(), seed=1)
    >>> registry.get("PMIC-A7").version
    0
    >>> sorted(registry.keys())
    ['PMIC-A7']
    """

    def __init__(self, config: ModelConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self._entries: dict[str, ModelEntry] = {}

    def get(self, model_key: str) -> ModelEntry:
        entry = self._entries.get(model_key)
        if entry is None:
            entry = ModelEntry(build_model(self.config, stable_seed(self.seed, model_key)))
            self._entries[model_key] = entry
        return entry

    def keys(self) -> list[str]:
        return list(self._entries)

    def replace(self, model_key: str, entry: ModelEntry | None) -> None:
        """Put ``entry`` back for ``model_key``; None starts that model afresh."""
        if entry is None:
            self._entries.pop(model_key, None)
        else:
            self._entries[model_key] = entry

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model_key: object) -> bool:
        return model_key in self._entries
