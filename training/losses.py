"""The joint multi-task loss of idetex_lite and its documented weights.

All heads train together on every batch (iDetex's joint multi-task training):
total = sum(weight[name] * term[name]). See docs/model-card.md, "Training recipe".
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

LOSS_WEIGHTS: dict[str, float] = {
    "map_bce": 2.0,  # per-cell BCE of DIST_MAPS against 8x8-cell coverage (soft targets)
    "map_dice": 0.5,  # soft Dice per (image, type) where the type is present: small regions count
    "severity": 1.0,  # smooth-L1 of SEVERITY_MAPS (0..2) on cells with a severity label
    "presence": 1.0,  # BCE of PRESENCE
    "key": 0.5,  # BCE of KEY (0 for absent types)
    "grade": 0.5,  # CE over fine levels a..j with neighbour label smoothing
    "score": 1.0,  # smooth-L1 of SCORE against the 1-5 pseudo-MOS
}


def multitask_loss(
    raw: Mapping[str, Tensor], target: Mapping[str, Tensor], weights: Mapping[str, float] = LOSS_WEIGHTS
) -> tuple[Tensor, dict[str, float]]:
    """Weighted sum of the per-head terms; returns the total and each unweighted term."""
    cov = target["coverage"]
    dist_logit = raw["DIST_MAPS"]
    terms: dict[str, Tensor] = {}
    terms["map_bce"] = F.binary_cross_entropy_with_logits(dist_logit, cov)
    prob = torch.sigmoid(dist_logit)
    inter = (prob * cov).sum(dim=(2, 3))
    denom = prob.sum(dim=(2, 3)) + cov.sum(dim=(2, 3))
    dice = 1.0 - (2.0 * inter + 1.0) / (denom + 1.0)
    pres = target["present"]
    terms["map_dice"] = (dice * pres).sum() / pres.sum().clamp(min=1.0)
    sev_pred = 2.0 * torch.sigmoid(raw["SEVERITY_MAPS"])
    w = target["severity_weight"]
    sev_err = F.smooth_l1_loss(sev_pred, target["severity"], reduction="none", beta=0.5)
    terms["severity"] = (sev_err * w).sum() / w.sum().clamp(min=1.0)
    terms["presence"] = F.binary_cross_entropy_with_logits(raw["PRESENCE"], pres)
    terms["key"] = F.binary_cross_entropy_with_logits(raw["KEY"], target["key"])
    log_p = F.log_softmax(raw["GRADE_PROBS"], dim=1)
    terms["grade"] = -(target["fine_soft"] * log_p).sum(dim=1).mean()
    score = 1.0 + 4.0 * torch.sigmoid(raw["SCORE"][:, 0])
    terms["score"] = F.smooth_l1_loss(score, target["mos"], beta=0.5)
    total = sum((weights[k] * v for k, v in terms.items()), start=dist_logit.new_zeros(()))
    return total, {k: float(v.detach()) for k, v in terms.items()}
