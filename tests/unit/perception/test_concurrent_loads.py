"""The face model and the detector both live in OpenCV's package: loaded at the same time on a fresh
worker (a camera frame asks both at once), one thread's lookup of the package's files must not race the
other thread's import of cv2 (which replaces itself in sys.modules while it bootstraps)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys, threading, time
DELAY = float(sys.argv[1])
from stratus_worker.inference.engine import InferenceEngine

engine = InferenceEngine()
start = threading.Barrier(2)
errors = []

def load(name, delay):
    start.wait()
    time.sleep(delay)  # the second lookup lands while the first load is importing cv2
    try:
        engine.load(name)
    except Exception as e:
        errors.append(f"{name}: {type(e).__name__}: {e}")

threads = [threading.Thread(target=load, args=("dlib/face-recognition-resnet", 0.0)),
           threading.Thread(target=load, args=("opencv/haar-cascades", DELAY))]
for t in threads: t.start()
for t in threads: t.join(120)
print(errors or "ok")
"""


def test_first_loads_of_two_opencv_models_at_once() -> None:
    for delay in ("0.001", "0.01", "0.05"):  # a race: a few fresh processes make a regression show
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, delay], capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "ok", done.stdout
