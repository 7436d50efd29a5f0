"""The `stratus` commands that talk to a Stratus API (everything but `stratus serve`), built on the client.

Credentials live in the user's config directory (`$STRATUS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/stratus`,
else ~/.config/stratus) in credentials.json, readable by its owner only (0600). `--json` prints JSON
(one object per line while following a job). Exit codes: 0 done, 1 the API refused or the job failed,
2 bad usage, 3 not signed in (or the sign-in expired), 4 the server could not be reached, 130 interrupted.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratus.client._core import ApiError, AuthenticationError, JobFailed, StratusError, job_id_of

if TYPE_CHECKING:
    from rich.console import Console

    from stratus.client._sync import Client

OK, FAILED, USAGE, UNAUTHENTICATED, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 4, 130
DEFAULT_URL = "http://127.0.0.1:8000"


# --- credentials -------------------------------------------------------------------------------------
def config_dir() -> Path:
    if os.environ.get("STRATUS_CONFIG_DIR"):
        return Path(os.environ["STRATUS_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stratus"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> dict[str, Any]:
    try:
        loaded = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def save_credentials(values: dict[str, Any]) -> Path:
    """Written owner-only (0600, in a 0700 directory), replacing the file atomically."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


# --- output ------------------------------------------------------------------------------------------
class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=False, highlight=False)
        return self._console

    def json(self, value: Any) -> None:
        print(json.dumps(value, default=str), flush=True)

    def result(self, value: Any, human: Callable[[], None] | None = None) -> None:
        if self.as_json or human is None:
            self.json(value)
        else:
            human()

    def table(self, rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
        if self.as_json:
            self.json(rows)
            return
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        self.console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


# --- the client from the stored credentials -----------------------------------------------------------
def make_client(args: argparse.Namespace) -> Client:
    from stratus.client._sync import Client

    stored = load_credentials()
    url = args.url or os.environ.get("STRATUS_URL") or stored.get("url") or DEFAULT_URL
    token = os.environ.get("STRATUS_API_KEY") or (
        stored.get("token") if stored.get("url", url) == url else None
    )
    refresh = stored.get("refresh_token") if token == stored.get("token") else None
    websocket = os.environ.get("STRATUS_WEBSOCKET_URL") or stored.get("websocket_url")
    return Client(url, api_key=token, refresh_token=refresh, websocket_url=websocket)


def _persist_refreshed(client: Client) -> None:
    """Keep tokens the client refreshed while working."""
    stored = load_credentials()
    if (
        stored.get("token")
        and client.token
        and stored["token"] != client.token
        and stored.get("url") == client.base_url
    ):
        save_credentials({**stored, "token": client.token, "refresh_token": client.refresh_token})


# --- commands ----------------------------------------------------------------------------------------
def cmd_login(args: argparse.Namespace, client: Client, out: Output) -> int:
    stored: dict[str, Any]
    if args.api_key:
        client.token = args.api_key
        me = client.me()  # an API key is used as it is: check it works
        stored = {"url": client.base_url, "token": args.api_key, "email": me.get("email")}
    else:
        email = args.email or input("Email: ")
        password = args.password or os.environ.get("STRATUS_PASSWORD") or getpass.getpass("Password: ")
        if args.register:
            client.register(email, password, args.name or email.split("@")[0])
        else:
            client.login(email, password)
        stored = {
            "url": client.base_url,
            "token": client.token,
            "refresh_token": client.refresh_token,
            "email": email,
        }
    if args.websocket_url or client.websocket_url:
        stored["websocket_url"] = args.websocket_url or client.websocket_url
    path = save_credentials(stored)
    out.result(
        {"url": client.base_url, "email": stored.get("email"), "credentials": str(path)},
        lambda: out.console.print(f"Signed in to {client.base_url} as {stored.get('email')} ({path})"),
    )
    return OK


def cmd_logout(args: argparse.Namespace, client: Client, out: Output) -> int:
    credentials_path().unlink(missing_ok=True)
    out.result({"signed_out": True}, lambda: out.console.print("Signed out"))
    return OK


def cmd_whoami(args: argparse.Namespace, client: Client, out: Output) -> int:
    me = client.me()
    out.result(me, lambda: out.console.print(f"{me.get('email')} ({me.get('id')}) at {client.base_url}"))
    return OK


def cmd_upload(args: argparse.Namespace, client: Client, out: Output) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"stratus upload: no such file: {path}", file=sys.stderr)
        return USAGE
    if out.as_json:
        dataset = client.upload_dataset(path, name=args.name, dataset_type=args.type)
    else:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TransferSpeedColumn,
        )

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=out.console,
        ) as bars:
            task = bars.add_task(f"Uploading {path.name}", total=path.stat().st_size)
            dataset = client.upload_dataset(
                path,
                name=args.name,
                dataset_type=args.type,
                progress=lambda done, total: bars.update(task, completed=done, total=total),
            )
    out.result(
        dataset,
        lambda: out.console.print(
            f"Dataset [bold]{dataset['id']}[/bold] {dataset['name']}: {dataset['status']}, "
            f"{dataset.get('row_count')} rows x {dataset.get('column_count')} columns"
        ),
    )
    return OK


def cmd_datasets(args: argparse.Namespace, client: Client, out: Output) -> int:
    if args.dataset_id:
        dataset = client.get_dataset(args.dataset_id)
        if out.as_json:
            out.json(dataset)
            return OK
        out.console.print(f"[bold]{dataset['name']}[/bold] ({dataset['id']}) {dataset['status']}")
        out.table(dataset.get("columns") or [], ["name", "type", "nulls", "non_null"], title="Columns")
        rows = client.dataset_rows(args.dataset_id, limit=args.limit)["rows"]
        out.table(rows, list(rows[0]) if rows else [], title="Rows")
        return OK
    datasets = list(_take(client.datasets(), args.limit))
    out.table(datasets, ["id", "name", "status", "row_count", "column_count", "created_at"], title="Datasets")
    return OK


def cmd_models(args: argparse.Namespace, client: Client, out: Output) -> int:
    models = client.builtin_models() if args.builtin else list(_take(client.models(), args.limit))
    out.table(models, ["id", "name", "source", "task", "model_type", "status"], title="Models")
    return OK


def cmd_jobs(args: argparse.Namespace, client: Client, out: Output) -> int:
    jobs = list(_take(client.jobs(status=args.status, kind=args.kind), args.limit))
    out.table(
        jobs,
        ["id", "kind", "status", "progress", "current_epoch", "total_epochs", "created_at"],
        title="Jobs",
    )
    return OK


def _take(items: Iterator[dict[str, Any]], limit: int) -> Iterator[dict[str, Any]]:
    for i, item in enumerate(items):
        if i >= limit:
            return
        yield item


def follow_job(client: Client, out: Output, job_id: str, *, label: str) -> int:
    """Show a job's progress until it ends: a rich bar with the live metrics, or JSON lines."""
    last: dict[str, Any] = {}
    if out.as_json:
        for message in client.follow(job_id):
            out.json(message)
            last = message
    else:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[detail]}"),
            console=out.console,
        ) as bars:
            task = bars.add_task(label, total=100, detail="queued")
            for message in client.follow(job_id):
                last = message
                data = message.get("data") or {}
                if message["type"] == "progress":
                    bars.update(task, completed=float(data.get("progress") or 0), detail=_detail(data))
                elif message["type"] in ("status", "error"):
                    status = data.get("status")
                    bars.update(task, detail=str(status))
                    if status == "completed":
                        bars.update(task, completed=100)
    job = client.get_job(job_id)
    status = job.get("status")
    if not out.as_json:
        style = "green" if status == "completed" else "red"
        line = f"Job {job_id} [{style}]{status}[/{style}]"
        if job.get("model_id"):
            line += f", model {job['model_id']}"
        if job.get("final_metrics"):
            line += f" ({_cell(job['final_metrics'])})"
        if job.get("error") or (last.get("data") or {}).get("error"):
            line += f": {job.get('error') or last['data']['error']}"
        out.console.print(line)
    else:
        out.json(job)
    return OK if status == "completed" else FAILED


def _detail(data: dict[str, Any]) -> str:
    parts = []
    if data.get("total_epochs"):
        parts.append(f"epoch {data.get('current_epoch')}/{data['total_epochs']}")
    elif data.get("total_steps"):
        parts.append(f"step {data.get('current_step')}/{data['total_steps']}")
    elif data.get("total") and data.get("step") is not None:  # media generation: denoising steps
        parts.append(f"step {data['step']}/{data['total']}")
    metrics = data.get("metrics") or {}
    parts.extend(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, int | float))
    if data.get("files_total"):  # a model download
        parts.append(f"files {data.get('files_done', 0)}/{data['files_total']}")
    if data.get("total_bytes"):
        parts.append(f"{_bytes(data.get('bytes_downloaded') or 0)}/{_bytes(data['total_bytes'])}")
    if data.get("phase"):
        parts.append(str(data["phase"]))
    return "  ".join(parts[:6])


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _started(out: Output, started: dict[str, Any], what: str) -> str:
    job_id = job_id_of(started)
    if not out.as_json:
        out.console.print(f"{what} started: job [bold]{job_id}[/bold]")
    return job_id


def cmd_train(args: argparse.Namespace, client: Client, out: Output) -> int:
    started = client.train(
        args.dataset_id,
        model_type=args.model_type,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        target=args.target,
        name=args.name,
    )
    job_id = _started(out, started, "Training")
    if args.follow:
        return follow_job(client, out, job_id, label="Training")
    if out.as_json:
        out.json(started)
    return OK


def cmd_watch(args: argparse.Namespace, client: Client, out: Output) -> int:
    return follow_job(client, out, args.job_id, label=f"Job {args.job_id}")


def cmd_cancel(args: argparse.Namespace, client: Client, out: Output) -> int:
    job = client.cancel_job(args.job_id)
    out.result(job, lambda: out.console.print(f"Job {args.job_id}: {job['status']}"))
    return OK


def cmd_predict(args: argparse.Namespace, client: Client, out: Output) -> int:
    inputs = json.loads(Path(args.file).read_text()) if args.file else [json.loads(i) for i in args.input]
    result = client.predict(args.model_id, inputs)
    out.result(result, lambda: out.table(result.get("predictions", []), ["class", "confidence", "value"]))
    return OK


def cmd_tasks(args: argparse.Namespace, client: Client, out: Output) -> int:
    name = args.model_name
    if args.task == "classify":
        result = client.classify(args.text, candidate_labels=args.labels or None, model_name=name)
    elif args.task == "qa":
        result = client.answer(args.text, args.context, model_name=name)
    elif args.task == "ner":
        result = client.entities(args.text, model_name=name)
    elif args.task == "summarize":
        result = client.summarize(args.text, model_name=name)
    elif args.task == "embed":
        result = client.embed(args.text, model_name=name)
    else:
        result = client.generate_text(args.text, max_tokens=args.max_tokens, model_name=name)
    # A task the inference worker is still starting answers `pending`: follow it to its result.
    deadline = time.monotonic() + 300
    while isinstance(result, dict) and result.get("status") == "pending" and result.get("task_id"):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
        result = client.get_task(result["task_id"])
    out.result(result, lambda: out.console.print_json(data=result))
    return OK


def cmd_download(args: argparse.Namespace, client: Client, out: Output) -> int:
    started = client.download_model(args.model_name, args.task, revision=args.revision)
    job_id = _started(out, started, f"Download of {args.model_name}")
    if args.follow:
        return follow_job(client, out, job_id, label=f"Downloading {args.model_name}")
    if out.as_json:
        out.json(started)
    return OK


def cmd_finetune(args: argparse.Namespace, client: Client, out: Output) -> int:
    params = {
        k: v
        for k, v in {
            "epochs": args.epochs,
            "max_steps": args.max_steps,
            "learning_rate": args.learning_rate,
        }.items()
        if v is not None
    }
    started = client.finetune(args.dataset, method=args.method, base_model=args.base_model, **params)
    job_id = _started(out, started, f"{args.method.upper()} fine-tune")
    if args.follow:
        return follow_job(client, out, job_id, label="Fine-tuning")
    if out.as_json:
        out.json(started)
    return OK


def cmd_chat(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Seed 003's chats (with --chat or --dataset: the data assistant) or seed 004's AI chat."""
    chat_id = args.chat
    if chat_id is None and args.dataset:
        chat = client.create_chat(args.title or "stratus chat", dataset_id=args.dataset, model_id=args.model)
        chat_id = chat.get("id") or chat.get("_id")
        if not out.as_json:
            out.console.print(f"Chat [bold]{chat_id}[/bold] on dataset {args.dataset}")
    questions = [args.message] if args.message else _lines()
    for question in questions:
        if chat_id is not None:
            reply = client.ask(chat_id, question, on_token=None if out.as_json else _print_token)
            if out.as_json:
                out.json(reply)
            else:
                print(flush=True)
                for chart in _charts(reply.get("charts")):
                    mark = chart.get("mark")
                    mark = mark.get("type") if isinstance(mark, dict) else mark
                    values = ((chart.get("data") or {}).get("values")) or []
                    out.console.print(f"[dim]chart: {mark} of {len(values)} values[/dim]")
                if reply.get("query"):
                    out.console.print(f"[dim]query: {json.dumps(reply['query'], default=str)[:300]}[/dim]")
        else:
            final: dict[str, Any] = {}
            streamed = False
            for event in client.stream_chat(
                question, model=args.model, temperature=args.temperature, max_tokens=args.max_tokens
            ):
                if event["type"] == "chat_token" and not out.as_json:
                    streamed = True
                    _print_token(str(event["data"].get("token", "")))
                elif event["type"] == "chat_response":
                    final = event["data"]
            if out.as_json:
                out.json(final)
            else:
                if not streamed:  # no WebSocket: the whole reply came at once
                    print(final.get("message", ""), end="")
                print(flush=True)
                out.console.print(f"[dim]{final.get('model')} · {_cell(final.get('usage') or {})}[/dim]")
    return OK


def _print_token(token: str) -> None:
    print(token, end="", flush=True)


def _lines() -> Iterator[str]:
    while True:
        try:
            line = input("> " if sys.stdin.isatty() else "")
        except EOFError:
            return
        if line.strip():
            yield line


def _charts(charts: Any) -> list[dict[str, Any]]:
    if isinstance(charts, dict):
        return [charts]
    if isinstance(charts, list):
        return [c for c in charts if isinstance(c, dict)]
    return []


def cmd_generate(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Seed 002's media generation: start, follow the denoising steps, save the output."""
    kind = "text-to-image" if args.media == "image" else "text-to-video"
    if args.media == "image":
        started = client.generate_image(
            args.prompt,
            negative_prompt=args.negative_prompt,
            width=args.width,
            height=args.height,
            num_inference_steps=args.steps,
            seed=args.seed,
            model_id=args.model,
        )
    else:
        started = client.generate_video(
            args.prompt, num_frames=args.frames, fps=args.fps, num_inference_steps=args.steps
        )
    job_id = _started(out, started, f"{kind} generation")
    if not (args.follow or args.out):
        if out.as_json:
            out.json(started)
        return OK
    code = follow_job(client, out, job_id, label="Generating")
    status = client.media_status(job_id, kind=kind)
    url = status.get("image_url") or status.get("video_url")
    if code == OK and url:
        target = Path(args.out or f"{job_id}.{'png' if args.media == 'image' else 'mp4'}")
        import httpx

        with httpx.stream("GET", url if "://" in url else client.base_url + url, timeout=120) as response:
            response.raise_for_status()
            with target.open("wb") as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)
        if out.as_json:
            out.json({**status, "saved": str(target)})
        else:
            out.console.print(f"Saved {target}")
    return code


# --- parser ------------------------------------------------------------------------------------------
Handler = Callable[[argparse.Namespace, "Client", Output], int]


def add_commands(commands: Any) -> None:
    """Adds the client commands to `stratus`'s subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=None, help=f"the API (default: stored at login, $STRATUS_URL or {DEFAULT_URL})"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of tables and bars")

    def add(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, parents=[common], help=help)
        parser.set_defaults(client_handler=handler)
        return parser

    login = add("login", cmd_login, "sign in (email and password, or an API key) and store the credentials")
    login.add_argument("--email")
    login.add_argument("--password", help="default: $STRATUS_PASSWORD or a prompt")
    login.add_argument("--api-key", help="an sk- key to use instead of a session")
    login.add_argument("--register", action="store_true", help="create the account first")
    login.add_argument("--name", help="with --register: your name")
    login.add_argument(
        "--websocket-url",
        help="the WebSocket API (AWS: the stack's WebSocketUrl output); default: /ws on --url",
    )
    add("logout", cmd_logout, "forget the stored credentials")
    add("whoami", cmd_whoami, "who the stored credentials sign in as")

    upload = add(
        "upload", cmd_upload, "upload a dataset file (CSV, JSON, JSON Lines, ZIP) with a progress bar"
    )
    upload.add_argument("file")
    upload.add_argument("--name")
    upload.add_argument("--type", help="classification, regression, text, instruction, ...")

    datasets = add("datasets", cmd_datasets, "list your datasets, or show one (columns and rows)")
    datasets.add_argument("dataset_id", nargs="?")
    datasets.add_argument("--limit", type=int, default=20)

    models = add("models", cmd_models, "list your models (--builtin: the platform's)")
    models.add_argument("--builtin", action="store_true")
    models.add_argument("--limit", type=int, default=50)

    train = add("train", cmd_train, "start a training job on a dataset")
    train.add_argument("dataset_id")
    train.add_argument("--model-type", default="mlp")
    train.add_argument("--epochs", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--target")
    train.add_argument("--name")
    train.add_argument("--follow", action="store_true", help="show live progress until it ends")

    jobs = add("jobs", cmd_jobs, "list your jobs, newest first")
    jobs.add_argument("--status")
    jobs.add_argument("--kind")
    jobs.add_argument("--limit", type=int, default=20)

    watch = add("watch", cmd_watch, "follow a job live until it ends")
    watch.add_argument("job_id")
    cancel = add("cancel", cmd_cancel, "stop a job")
    cancel.add_argument("job_id")

    predict = add("predict", cmd_predict, "predict with a trained model")
    predict.add_argument("model_id")
    predict.add_argument("--input", action="append", default=[], help="one row as JSON (repeatable)")
    predict.add_argument("--file", help="a JSON file holding the list of rows")

    tasks = add("tasks", cmd_tasks, "run an NLP task: classify, qa, ner, summarize, embed, generate")
    tasks.add_argument("task", choices=["classify", "qa", "ner", "summarize", "embed", "generate"])
    tasks.add_argument("text", help="the text (the question for qa, the prompt for generate)")
    tasks.add_argument("--context", default="", help="qa: the passage to answer from")
    tasks.add_argument("--labels", nargs="*", help="classify: candidate labels (zero-shot)")
    tasks.add_argument("--model-name")
    tasks.add_argument("--max-tokens", type=int)

    download = add("download-model", cmd_download, "download a hub model into your registry")
    download.add_argument("model_name")
    download.add_argument("--task", required=True, help="its task, e.g. text-classification")
    download.add_argument("--revision")
    download.add_argument("--follow", action="store_true", help="show files and bytes until it ends")

    chat = add("chat", cmd_chat, "chat with the language model, or ask questions about a dataset")
    chat.add_argument("message", nargs="?", help="default: one question per line from stdin")
    chat.add_argument("--chat", help="a chat's id (seed 003): the data assistant answers in it")
    chat.add_argument("--dataset", help="start a chat on this dataset (its questions get computed answers)")
    chat.add_argument("--title")
    chat.add_argument("--model", help="a model name or alias")
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--max-tokens", type=int)

    generate = add("generate", cmd_generate, "generate an image or a video from a prompt")
    generate.add_argument("media", choices=["image", "video"])
    generate.add_argument("prompt")
    generate.add_argument("--negative-prompt")
    generate.add_argument("--width", type=int)
    generate.add_argument("--height", type=int)
    generate.add_argument("--steps", type=int)
    generate.add_argument("--seed", type=int)
    generate.add_argument("--frames", type=int)
    generate.add_argument("--fps", type=int)
    generate.add_argument("--model", help="a text-to-image model id")
    generate.add_argument("--out", help="where to save the output (implies --follow)")
    generate.add_argument("--follow", action="store_true", help="show the denoising steps until it ends")

    finetune = add("finetune", cmd_finetune, "start a LoRA or QLoRA fine-tune of an LLM")
    finetune.add_argument("dataset", help="the dataset's id or name")
    finetune.add_argument("--method", choices=["lora", "qlora"], default="lora")
    finetune.add_argument("--base-model")
    finetune.add_argument("--epochs", type=int)
    finetune.add_argument("--max-steps", type=int)
    finetune.add_argument("--learning-rate", type=float)
    finetune.add_argument("--follow", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Runs a client command; returns its exit code."""
    out = Output(args.json)
    handler: Handler = args.client_handler
    import httpx

    client = make_client(args)
    try:
        if handler is not cmd_login and handler is not cmd_logout and not client.token:
            print("stratus: not signed in: run `stratus login` first", file=sys.stderr)
            return UNAUTHENTICATED
        code = handler(args, client, out)
        _persist_refreshed(client)
        return code
    except AuthenticationError as e:
        print(f"stratus: {e.message} (run `stratus login`)", file=sys.stderr)
        return UNAUTHENTICATED
    except JobFailed as e:
        print(f"stratus: {e}", file=sys.stderr)
        return FAILED
    except ApiError as e:
        if args.json:
            print(json.dumps({"error": e.body, "status_code": e.status_code}), flush=True)
        print(f"stratus: {e}", file=sys.stderr)
        return FAILED
    except httpx.TransportError as e:
        print(f"stratus: cannot reach {client.base_url}: {e}", file=sys.stderr)
        return UNREACHABLE
    except StratusError as e:
        print(f"stratus: {e}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        return INTERRUPTED
    finally:
        client.close()
