"""Chat (seed 004's /api/chat and its WebSocket messages) and the OpenAI-compatible /v1 API, streamed
from the language model the inference worker serves (never run in the API process)."""
