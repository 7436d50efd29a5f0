"""Chats through the client, the CLI and the console on a live `stratus serve`: the data assistant answers
a question about an uploaded CSV with a computed number and a chart (tokens streamed as they come), and
seed 004's chat streams over the WebSocket. Skipped where the server has no chats capability."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stratus.client import Client
from tests.e2e.server import ServeProcess

pytestmark = pytest.mark.slow

SALES_CSV = """date,product,sales,region
2025-01-15,Product A,1000,North
2025-02-10,Product B,1500,South
2025-04-03,Product A,1200,East
2025-05-21,Product C,900,North
2025-07-04,Product A,2000,North
2025-08-12,Product B,3000,South
2025-09-30,Product C,4000,South
2025-10-05,Product A,1100,East
2025-11-11,Product B,1300,West
"""
# The first reply loads the language model on the inference worker.
REPLY_WAIT_S = 600


@pytest.fixture(scope="module")
def chats_server(stratus_server: ServeProcess) -> ServeProcess:
    paths = httpx.get(f"{stratus_server.base_url}/openapi.json", timeout=60).json()["paths"]
    if "/api/chats" not in paths:
        pytest.skip("this server has no chats capability")
    return stratus_server


@pytest.fixture(scope="module")
def stratus(chats_server: ServeProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with Client(chats_server.base_url, timeout=REPLY_WAIT_S) as client:
        client.register("chats@example.com", "securepass123", "Chats")
        yield client


@pytest.fixture(scope="module")
def sales(stratus: Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("chats") / "sales.csv"
    path.write_text(SALES_CSV)
    dataset_id: str = stratus.upload_dataset(path)["id"]
    return dataset_id


def test_ask_the_data_assistant_with_streamed_tokens(stratus: Client, sales: str) -> None:
    chat = stratus.create_chat("Sales", dataset_id=sales)
    chat_id = chat.get("id") or chat["_id"]
    tokens: list[str] = []
    reply = stratus.ask(
        chat_id, "What is the average sales for Q3?", on_token=tokens.append, timeout=REPLY_WAIT_S
    )
    assert reply["role"] == "assistant"
    assert "3,000" in reply["content"] or "3000" in reply["content"], reply
    assert tokens, "no tokens were streamed"
    by_region = stratus.ask(chat_id, "What is the total sales by region?", timeout=REPLY_WAIT_S)
    charts = by_region["charts"] if isinstance(by_region["charts"], list) else [by_region["charts"]]
    assert any(c and c.get("mark") for c in charts), by_region
    assert [m["role"] for m in stratus.messages(chat_id)] == ["user", "assistant", "user", "assistant"]
    assert chat_id in [c.get("id") or c.get("_id") for c in stratus.chats()]


def test_seed_004_chat_streams_tokens(stratus: Client, chats_server: ServeProcess) -> None:
    paths = httpx.get(f"{chats_server.base_url}/openapi.json", timeout=60).json()["paths"]
    if "/api/chat" not in paths:
        pytest.skip("this server has no seed 004 chat")
    events = list(stratus.stream_chat("Say hello.", max_tokens=8, temperature=0))
    assert events[-1]["type"] == "chat_response" and events[-1]["data"]["message"]
    assert any(e["type"] == "chat_token" for e in events)
    assert len(list(stratus.chat_history())) >= 1


def test_cli_chat_on_a_dataset(
    chats_server: ServeProcess, stratus: Client, sales: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    (config / "credentials.json").write_text(
        json.dumps({"url": chats_server.base_url, "token": stratus.token})
    )
    env = {**os.environ, "STRATUS_CONFIG_DIR": str(config)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stratus.local.cli",
            "chat",
            "--dataset",
            sales,
            "What is the total sales?",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=REPLY_WAIT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout.splitlines()[-1])
    assert "16,000" in reply["content"] or "16000" in reply["content"], reply


def test_console_chat_renders_the_chart(chats_server: ServeProcess, stratus: Client, sales: str) -> None:
    if not (shutil.which("/usr/bin/chromium") and shutil.which("/usr/bin/chromedriver")):
        pytest.skip("chromium and chromium-driver are not installed (make browser)")
    from selenium.webdriver.common.by import By

    from tests.e2e.test_console_browser import _browser, _ready, _shot, _wait

    base = chats_server.base_url
    chat = stratus.create_chat("Console chat", dataset_id=sales)
    chat_id = chat.get("id") or chat["_id"]
    browser = _browser(1280, 900)
    try:
        browser.get(base + "/console/signin")
        browser.execute_script("localStorage.setItem('stratus.token', arguments[0])", stratus.token)
        browser.get(base + "/console/chats")
        _ready(browser)
        assert "Console chat" in browser.find_element(By.ID, "chats-table").text
        browser.get(f"{base}/console/chats/{chat_id}")
        _ready(browser)
        browser.find_element(By.ID, "ask-content").send_keys("What is the total sales by region?")
        browser.find_element(By.ID, "ask-submit").click()
        _wait(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant .chart svg"),
            timeout=REPLY_WAIT_S,
        )
        assert "South" in browser.find_element(By.ID, "chat-messages").text
        _shot(browser, "chat")
    finally:
        browser.quit()
