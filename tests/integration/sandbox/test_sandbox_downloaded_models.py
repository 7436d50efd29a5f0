"""A user's downloaded model loads by its hub name inside the sandbox: the worker copies its snapshot from
storage (as for NLP tasks) and maps it, read-only, into the run's offline hub cache."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus.adapters.local.storage import LocalDirectoryStorage
from stratus_worker.sandbox.pool import SandboxPool
from stratus_worker.sandbox.runner import builtin_model_dirs
from stratus_worker.sandbox.serve import CustomTasks
from stratus_worker.sandbox.spec import SandboxConfig

pytestmark = pytest.mark.slow  # a sandbox runner imports torch

NAME = "alice-org/my-minilm"
SNAPSHOT = "users/u1/jobs/j1/snapshot"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """Outside pytest's own (mode 0700) temporary root: the sandbox uid must be able to read the copy."""
    path = Path(tempfile.mkdtemp(prefix="stratus-downloaded-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def test_a_downloaded_model_loads_by_name(shared_dir: Path) -> None:
    storage = LocalDirectoryStorage(
        shared_dir / "objects", base_url="http://localhost", signing_secret="test"
    )
    source_dir = Path(builtin_model_dirs()["sentence-transformers/all-MiniLM-L6-v2"])
    files = [str(p.relative_to(source_dir)) for p in source_dir.rglob("*") if p.is_file()]
    for name in files:
        await storage.put_bytes(f"{SNAPSHOT}/{name}", (source_dir / name).read_bytes())
    cache = shared_dir / "cache"
    cache.mkdir(mode=0o755)
    custom = CustomTasks(lambda: storage, cache, SandboxPool(SandboxConfig(runners=1)))
    code = {
        "tokenizer_code": f"tokenizer = AutoTokenizer.from_pretrained({NAME!r})",
        "model_code": f"model = AutoModel.from_pretrained({NAME!r})",
        "function_code": "def custom_function(text):\n"
        "    return int(model(**tokenizer(text, return_tensors='pt')).last_hidden_state.shape[-1])",
        "input_text": "downloaded",
    }
    try:
        [answer] = await custom.run(
            [code], {}, {"models": [{"name": NAME, "snapshot": SNAPSHOT, "files": files}]}
        )
        assert answer["ok"] is True and answer["result"] == 384, str(answer)
        # Without the source, the same name is not found: nothing is fetched.
        [unknown] = await custom.run([code], {}, None)
        assert unknown["ok"] is False and unknown["reason"] == "model_not_found", unknown
    finally:
        await custom.close()
    for root in (shared_dir / "objects", cache):  # the copy is only read
        for path in root.rglob("*"):
            assert not path.name.startswith(".partial")
