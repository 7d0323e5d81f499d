"""The registered policy as an MLflow pyfunc, so ``mlflow.pyfunc.load_model`` users get recommendations.

Serving and ``recommend-batch`` load the policy directory directly (faster, and they add Feast context);
this wrapper is for anyone who only has MLflow: input rows ``user_id`` (+ optional ``recent_items``),
output rows ``user_id, item_id, rank, score``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel


class PolicyModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from models.hybrid import HybridPolicy

        self.policy = HybridPolicy.load(Path(context.artifacts["policy"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        k = int((params or {}).get("k", 10))
        recs = self.policy.recommend(model_input, k)
        rows = [
            (user, item, rank + 1, score)
            for user, rec in zip(model_input["user_id"].astype(str), recs, strict=True)
            for rank, (item, score) in enumerate(zip(rec.items, rec.scores, strict=True))
        ]
        return pd.DataFrame(rows, columns=["user_id", "item_id", "rank", "score"])
