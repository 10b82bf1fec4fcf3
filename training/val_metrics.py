"""Quick validation metrics logged during training (numpy only).

These are training-time proxies on the val shards, not the challenge metrics
(service.iqa.metrics computes those on the evaluation set).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from service.domain.taxonomy import GRADE_THRESHOLDS


def binary_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula; NaN when one class is missing."""
    y = y.astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def grade_index(mos: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(GRADE_THRESHOLDS), mos, side="right")


def val_metrics(out: dict[str, np.ndarray], tgt: dict[str, np.ndarray]) -> dict[str, float]:
    """Map F1 (cells, pooled), presence AUC/accuracy, key accuracy, grade accuracy, score SRCC/MAE."""
    pred_cells = out["DIST_MAPS"] >= 0.5
    true_cells = tgt["coverage"] >= 0.5
    tp = float((pred_cells & true_cells).sum())
    f1 = 2 * tp / max(float(pred_cells.sum() + true_cells.sum()), 1.0)
    pres, pres_p = tgt["present"] > 0.5, out["PRESENCE"]
    aucs = [binary_auc(pres[:, t], pres_p[:, t]) for t in range(pres.shape[1])]
    fine_pred = out["GRADE_PROBS"].argmax(axis=1)
    score = out["SCORE"][:, 0]
    mos = tgt["mos"]
    srcc = spearmanr(score, mos).statistic if len(mos) > 2 else float("nan")
    return {
        "map_f1": f1,
        "presence_auc": float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else float("nan"),
        "presence_acc": float(((pres_p >= 0.5) == pres).mean()),
        "key_acc": float(((out["KEY"] >= 0.5) == (tgt["key"] > 0.5)).mean()),
        "fine_acc": float((fine_pred == tgt["fine"]).mean()),
        "grade_acc": float((fine_pred // 2 == grade_index(mos)).mean()),
        "score_srcc": float(srcc),
        "score_mae": float(np.abs(score - mos).mean()),
    }
