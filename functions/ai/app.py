"""HTTP Lambda for the ai group: chat (seed 004's /api/chat, the OpenAI-compatible /v1 chat, models and
embeddings), recognition and audio, and media generation (seed 002)."""

from stratus.handlers.http import http_lambda

app, handler = http_lambda("ai")
