"""Seeded synthetic tables for the worker tests: small enough to train in a second, with signal enough
that a working model clearly beats the naive baseline."""

from __future__ import annotations

import csv
import io
import random


def classification_csv(rows: int = 600, seed: int = 7) -> bytes:
    """x1, x2 numeric and a categorical `color`; `label` is separable from them (with 3% label noise)."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["x1", "x2", "color", "label"])
    for _ in range(rows):
        x1, x2 = rng.gauss(0, 1), rng.gauss(0, 1)
        color = rng.choice(["red", "green", "blue"])
        score = x1 + 0.8 * x2 + (1.2 if color == "red" else -0.4)
        label = "yes" if score > 0.3 else "no"
        if rng.random() < 0.03:
            label = "no" if label == "yes" else "yes"
        writer.writerow([f"{x1:.4f}", f"{x2:.4f}" if rng.random() > 0.02 else "", color, label])
    return out.getvalue().encode()


def regression_csv(rows: int = 600, seed: int = 11) -> bytes:
    """price = 3*a - 2*b + 5 (+ a category offset and a little noise)."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["a", "b", "kind", "price"])
    for _ in range(rows):
        a, b = rng.uniform(-2, 2), rng.uniform(-2, 2)
        kind = rng.choice(["x", "y"])
        price = 3 * a - 2 * b + 5 + (1.0 if kind == "x" else 0.0) + rng.gauss(0, 0.1)
        writer.writerow([f"{a:.4f}", f"{b:.4f}", kind, f"{price:.4f}"])
    return out.getvalue().encode()


def noise_csv(rows: int = 300, seed: int = 3) -> bytes:
    """A target unrelated to the features: validation loss plateaus at once."""
    rng = random.Random(seed)
    lines = ["f1,f2,target"]
    lines += [f"{rng.gauss(0, 1):.4f},{rng.gauss(0, 1):.4f},{rng.choice('ab')}" for _ in range(rows)]
    return ("\n".join(lines) + "\n").encode()
