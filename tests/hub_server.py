"""A local directory served over HTTP the way the Hugging Face Hub serves repositories, for the parts of
its protocol huggingface_hub's download path uses (these machines cannot reach the real hub):

- GET  /api/models/{org}/{name}/revision/{rev}  -> {"id", "sha", "siblings": [{"rfilename", "size"}]}
- HEAD /{org}/{name}/resolve/{rev}/{path}       -> X-Repo-Commit, ETag, Content-Length
- GET  /{org}/{name}/resolve/{rev}/{path}       -> the file

An unknown repository answers 404 with `X-Error-Code: RepoNotFound`, as the hub does. The server
counts file GETs so tests can tell what was fetched.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

COMMIT = "5f0e1d2c3b4a59687766554433221100ffeeddcc"
TINY_REPO = "stratus-test/tiny-sentiment"
TINY_ENCODER = "stratus-test/tiny-encoder"
TINY_LM = "stratus-test/tiny-lm"
TINY_QA = "stratus-test/tiny-squad"
TINY_NER = "stratus-test/tiny-ner"
TINY_T5 = "stratus-test/tiny-t5"


class HubServer:
    def __init__(self, root: Path, *, delay_s: float = 0.0) -> None:
        """`delay_s`: how long each file download takes at least (to watch progress arrive)."""
        self.root = root
        self.delay_s = delay_s
        self.fetched: Counter[str] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def _answer(self, *, body: bool) -> None:
                parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
                if parts[:2] == ["api", "models"] and "revision" in parts:
                    repo = "/".join(parts[2 : parts.index("revision")])
                    self._info(repo, body=body)
                elif "resolve" in parts:
                    at = parts.index("resolve")
                    self._file("/".join(parts[:at]), "/".join(parts[at + 2 :]), body=body)
                else:
                    self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"}, body=body)

            def _info(self, repo: str, *, body: bool) -> None:
                directory = hub.root / repo
                if not directory.is_dir():
                    self._send(
                        404, b'{"error":"Repository not found"}', {"X-Error-Code": "RepoNotFound"}, body=body
                    )
                    return
                siblings = [
                    {"rfilename": p.relative_to(directory).as_posix(), "size": p.stat().st_size}
                    for p in sorted(directory.rglob("*"))
                    if p.is_file()
                ]
                doc = {"id": repo, "modelId": repo, "sha": COMMIT, "private": False, "siblings": siblings}
                self._send(200, json.dumps(doc).encode(), {"Content-Type": "application/json"}, body=body)

            def _file(self, repo: str, name: str, *, body: bool) -> None:
                path = hub.root / repo / name
                if not path.is_file():
                    self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"}, body=body)
                    return
                data = path.read_bytes()
                headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
                if body:
                    hub.fetched[f"{repo}/{name}"] += 1
                    time.sleep(hub.delay_s)
                self._send(200, data, headers, body=body)

            def _send(self, code: int, data: bytes, headers: dict[str, str], *, body: bool) -> None:
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

        return Handler


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NER_LABELS = ("O", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


def tiny_bert(directory: Path, *, head: Literal["classifier", "qa", "ner"] | None) -> None:
    """A tiny randomly initialised BERT (2 layers, hidden 32) with the all-MiniLM-L6-v2 tokenizer,
    saved with save_pretrained: a two-label sentiment classifier, a span (QA) head, a BIO NER head,
    or (head=None) the bare encoder."""
    import torch
    import transformers

    from stratus_worker.inference import registry

    tokenizer = transformers.AutoTokenizer.from_pretrained(
        registry.get("sentence-transformers/all-MiniLM-L6-v2").local_path()
    )
    labels = NER_LABELS if head == "ner" else ("negative", "positive")
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model_class = {
        None: transformers.BertModel,
        "classifier": transformers.BertForSequenceClassification,
        "qa": transformers.BertForQuestionAnswering,
        "ner": transformers.BertForTokenClassification,
    }[head]
    torch.manual_seed(0)
    model = model_class(config)
    if head == "ner":  # every word a B-ORG, so what the grouping makes of sub-tokens is visible
        with torch.no_grad():
            model.classifier.bias.copy_(torch.tensor([0.0, 50.0, 0.0, 0.0, 0.0]))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def tiny_sentiment_repo(
    repo: Path, *, head: Literal["classifier", "qa", "ner"] | None = "classifier"
) -> None:
    """`tiny_bert` as a hub repository, plus copies a download should skip (ONNX, pickled weights)."""
    tiny_bert(repo, head=head)
    (repo / "onnx").mkdir()
    (repo / "onnx" / "model.onnx").write_bytes(b"not fetched")
    (repo / "pytorch_model.bin").write_bytes(b"not fetched either: safetensors are there")


def _word_tokenizer() -> Any:
    """A word-level fast tokenizer over a small vocabulary (<unk> 0, <pad> 1, </s> 2), with no chat
    template, as a base model's would be."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ("a", "and", "answer", "bad", "context", "good", "great", "is", "it", "product", "question",
             "service", "the", "this", "was")  # fmt: skip
    vocab = {"<unk>": 0, "<pad>": 1, "</s>": 2, **{word: i + 3 for i, word in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )


def tiny_causal_lm(directory: Path) -> None:
    """A tiny randomly initialised Llama causal LM (2 layers, hidden 32), saved with save_pretrained."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _word_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=1,
        eos_token_id=2,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def tiny_seq2seq(directory: Path) -> None:
    """A tiny randomly initialised T5 (2+2 layers, d_model 32) with T5's summarization prefix."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = _word_tokenizer()
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        task_specific_params={"summarization": {"prefix": "summarize: "}},
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
