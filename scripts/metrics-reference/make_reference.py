"""Multi-label reference values from scikit-learn, for eval/tasks' tests.

Writes JSON to stdout: seeded cases of scores [n, c] (multiples of 1/8, so
float32 holds them exactly and ties are frequent) and multi-hot targets, with
sklearn's average_precision_score and roc_auc_score per class, unweighted
and with integer sample weights (what a bootstrap resample amounts to), and
their macro means over the classes where each is defined. A class without
positives has no AP and no AUROC, one without negatives no AUROC: those are
written as null (sklearn warns or raises there).
"""
import json
import warnings

import numpy as np
import sklearn
from sklearn.metrics import average_precision_score, roc_auc_score


def per_class(scores, targets, weights):
    ap, auc = [], []
    for k in range(targets.shape[1]):
        y, s = targets[:, k], scores[:, k]
        w = None if weights is None else weights
        pos = y.sum() if w is None else (y * w).sum()
        neg = (1 - y).sum() if w is None else ((1 - y) * w).sum()
        ap.append(float(average_precision_score(y, s, sample_weight=w)) if pos > 0 else None)
        auc.append(float(roc_auc_score(y, s, sample_weight=w)) if pos > 0 and neg > 0 else None)
    return ap, auc


def mean(values):
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def case(name, rng, n, c, prevalence, ties):
    scores = rng.normal(size=(n, c)) + 0.0
    targets = (rng.random(size=(n, c)) < prevalence).astype(int)
    scores += 1.5 * targets * rng.random(size=(1, c))  # some signal, differing per class
    scores = np.round(scores * (2 if ties else 64)) / (2 if ties else 64) / 4
    weights = rng.integers(0, 4, size=n)
    ap, auc = per_class(scores, targets, None)
    wap, wauc = per_class(scores, targets, weights)
    return {
        "name": name,
        "scores": scores.tolist(),
        "targets": targets.tolist(),
        "weights": weights.tolist(),
        "ap": ap, "auroc": auc, "mean_ap": mean(ap), "mean_auroc": mean(auc),
        "weighted_ap": wap, "weighted_auroc": wauc,
    }


def main():
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(20261204)
    cases = [
        case("few-ties", rng, 300, 6, np.array([0.05, 0.2, 0.5, 0.8, 0.1, 0.3]), ties=False),
        case("many-ties", rng, 120, 4, np.array([0.1, 0.4, 0.6, 0.25]), ties=True),
    ]
    # A class with no positives and one with no negatives.
    edge = case("degenerate", rng, 40, 3, np.array([0.0, 1.0, 0.5]), ties=True)
    cases.append(edge)
    print(json.dumps({"sklearn": sklearn.__version__, "numpy": np.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
