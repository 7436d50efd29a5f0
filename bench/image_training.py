"""Training throughput of the image_training job (`stratus_worker.vision`) against a plain torch loop.

Both sides train the same model (EfficientNet-Lite0 from the shipped weights, frozen but for a new
head, built by the job's own `backbones.build_lite0`) on the same decoded images (a synthetic dataset
of coloured shapes, decoded once by the job's `decode_zip`), with the same batch size, the same
per-batch normalisation and augmentation (flips and crops) and the same optimizer (Adam):

- job: `ImageTrainer._epoch`, the epoch the job runs (its progress events, stop checks and running
  metrics included), events going to an in-memory sink;
- job + validation: `ImageTrainer.fit()` for one epoch, which adds the held-out pass and the
  per-epoch checkpoint (reported for context, not against the target);
- baseline: a plain loop over the same batches: normalise, augment, forward, loss, backward, step.

Images/s of the training split, median of `--repeats` epochs per side, sides alternating so a busy
machine slows both alike; timed by this thread's CPU time with one torch thread (wall time with more,
or `--wall`). Target: job >= 0.95x the plain loop.

Usage: .venv/bin/python bench/image_training.py [--per-class 48] [--size 96] [--batch 16]
       [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "core"), str(ROOT / "containers" / "worker")]

from stratus.adapters.local.storage import LocalDirectoryStorage  # noqa: E402
from stratus.ports.events import Event  # noqa: E402
from stratus_worker.events import JobEvents, ProgressGate  # noqa: E402
from stratus_worker.runtime import JobContext  # noqa: E402
from stratus_worker.vision.backbones import build_lite0  # noqa: E402
from stratus_worker.vision.images import augment, decode_zip, normalise, stratified_split  # noqa: E402
from stratus_worker.vision.loop import ImageTrainer, Split  # noqa: E402
from stratus_worker.vision.train import parse  # noqa: E402
from tests.synthetic_images import shapes_zip  # noqa: E402

TARGET = 0.95
# With one torch thread the work runs on this thread: its CPU time is what an epoch costs, unaffected by
# other processes on a shared machine (wall time is, badly). `--wall` measures wall time instead.
CLOCK = time.thread_time


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-class", type=int, default=48)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wall", action="store_true", help="wall-clock time (for --threads > 1)")
    args = parser.parse_args()
    global CLOCK
    if args.wall or args.threads > 1:
        CLOCK = time.perf_counter
    torch.set_num_threads(args.threads)
    with zipfile.ZipFile(io.BytesIO(shapes_zip(args.per_class))) as archive:
        data = decode_zip(archive, args.size)
    train_idx, val_idx = stratified_split(data.targets.tolist(), 0.2, 1)
    split = Split(
        data.images[train_idx], data.targets[train_idx], data.images[val_idx], data.targets[val_idx]
    )
    n = len(split.y_train)
    params = parse(
        {
            "dataset_key": "unused",
            "seed": 1,
            "hyperparameters": {
                "epochs": 1,
                "batch_size": args.batch,
                "learning_rate": 0.001,
                "image_size": args.size,
            },
        }
    )
    work = Path(tempfile.mkdtemp(prefix="bench-image-"))
    ctx = JobContext(
        "bench",
        {},
        "bench",
        work,
        LocalDirectoryStorage(work / "objects", base_url="http://bench", signing_secret="unused"),  # noqa: S106
        JobEvents(Sink(), "bench"),
    )

    def fresh() -> Any:
        torch.manual_seed(1)
        built = build_lite0(len(data.labels), args.size)
        built.model.freeze(0)
        return built

    job_built, plain_built, fit_built = fresh(), fresh(), fresh()
    trainer = ImageTrainer(ctx, params, job_built, split, data.labels)
    model = plain_built.model
    optimizer = torch.optim.Adam(model.trainable(), lr=0.001)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(1)

    def job_epoch() -> float:
        order = torch.randperm(n, generator=generator)
        started = CLOCK()
        trainer._epoch(1, order, args.batch, 10**9, ProgressGate())
        return CLOCK() - started

    def plain_epoch() -> float:
        order = torch.randperm(n, generator=generator)
        started = CLOCK()
        model.train()
        for start in range(0, n, args.batch):
            index = order[start : start + args.batch]
            x = augment(normalise(split.x_train[index], plain_built.mean, plain_built.std), generator)
            loss = loss_fn(model(x), split.y_train[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return CLOCK() - started

    def fit_epoch() -> float:
        fitter = ImageTrainer(ctx, params, fit_built, split, data.labels)
        started = CLOCK()
        fitter.fit()
        return CLOCK() - started

    job_epoch(), plain_epoch()  # warm-up
    job_times, plain_times, fit_times = [], [], []
    for _ in range(args.repeats):
        job_times.append(job_epoch())
        plain_times.append(plain_epoch())
        fit_times.append(fit_epoch())
    job, plain, fit = (n / statistics.median(t) for t in (job_times, plain_times, fit_times))
    print(
        f"EfficientNet-Lite0 (frozen, new head), {n} training images of {args.size}px, batch {args.batch}, "
        f"{args.threads} thread(s), median of {args.repeats} epochs, "
        f"{'wall' if CLOCK is time.perf_counter else 'thread CPU'} time"
    )
    print(f"{'side':<34} {'images/s':>9}")
    print(f"{'plain torch loop (baseline)':<34} {plain:>9.1f}")
    print(f"{'job epoch (ImageTrainer)':<34} {job:>9.1f}")
    print(f"{'job epoch + validation + checkpoint':<34} {fit:>9.1f}")
    ratio = job / plain
    print(f"ratio job / plain: {ratio:.3f}x (target >= {TARGET}x): {'met' if ratio >= TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
