"""Held-out metrics and the baselines they are judged against, in plain Python over label lists.

A model is only worth serving if it beats predicting the majority class (classification) or the
training mean (regression); the result event reports both so the API and the user can see the margin.
"""

from __future__ import annotations

import math


def classification_metrics(y_true: list[int], y_pred: list[int]) -> dict[str, float]:
    """Accuracy and macro precision / recall / F1 over the classes that occur in either list."""
    classes = sorted(set(y_true) | set(y_pred))
    precisions, recalls, f1s = [], [], []
    for c in classes:
        tp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == c and p == c)
        predicted = sum(1 for p in y_pred if p == c)
        actual = sum(1 for t in y_true if t == c)
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    n = max(len(y_true), 1)
    return {
        "accuracy": sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == p) / n,
        "precision_macro": _mean(precisions),
        "recall_macro": _mean(recalls),
        "f1_macro": _mean(f1s),
    }


def majority_accuracy(y_train: list[int], y_val: list[int]) -> float:
    """Accuracy on `y_val` of always answering the training split's most frequent class."""
    if not y_train or not y_val:
        return 0.0
    majority = max(set(y_train), key=lambda c: (y_train.count(c), -c))
    return sum(1 for y in y_val if y == majority) / len(y_val)


def regression_metrics(y_true: list[float], y_pred: list[float]) -> dict[str, float]:
    n = max(len(y_true), 1)
    errors = [p - t for t, p in zip(y_true, y_pred, strict=True)]
    mean = math.fsum(y_true) / n
    total = math.fsum((t - mean) ** 2 for t in y_true)
    residual = math.fsum(e * e for e in errors)
    return {
        "rmse": math.sqrt(residual / n),
        "mae": math.fsum(abs(e) for e in errors) / n,
        "r2": 1 - residual / total if total > 0 else 0.0,
    }


def mean_rmse(y_train: list[float], y_val: list[float]) -> float:
    """RMSE on `y_val` of always answering the training split's mean."""
    if not y_train or not y_val:
        return 0.0
    mean = math.fsum(y_train) / len(y_train)
    return math.sqrt(math.fsum((y - mean) ** 2 for y in y_val) / len(y_val))


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0
