"""Small builders of valid messages for tests (no broker, no files)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stream_al.records import OracleLabel, OracleRequest, ParametricRecord, query_id_for

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def parametric(record_id: str = "r-1", product: str = "PMIC-A7", label: str | None = None,
               **measurements: float | None) -> ParametricRecord:
    return ParametricRecord(record_id=record_id, ts=T0, product=product, tester_id="T-1",
                            site=1, die_x=3, die_y=-2,
                            measurements=measurements or {"vdd": 0.9, "idd": 1.2},
                            label=label)


def request(record_id: str = "r-1", model_key: str = "PMIC-A7", ttl_s: float = 3600,
            created: datetime = T0, **overrides: Any) -> OracleRequest:
    fields: dict[str, Any] = dict(
        query_id=query_id_for(record_id, model_key), record_id=record_id, kind="parametric",
        model_key=model_key, reason="uncertainty", uncertainty=0.8, threshold=0.5,
        proba={"pass": 0.6, "fail": 0.4}, predicted="pass", model_version=0,
        created_at=created, expires_at=created + timedelta(seconds=ttl_s),
        record=parametric(record_id, model_key),
    )
    fields.update(overrides)
    return OracleRequest(**fields)


def label(query_id: str, value: str = "fail", at: datetime = T0 + timedelta(minutes=5),
          labeler: str = "eng-1") -> OracleLabel:
    return OracleLabel(query_id=query_id, label=value, labeler=labeler, labeled_at=at)
