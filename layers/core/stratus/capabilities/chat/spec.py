"""The chat task's limits and defaults, written once: the API's schemas, the service and the inference
worker's validation read them (this module imports nothing heavy)."""

from __future__ import annotations

from stratus.schemas.options import FloatOption, IntOption

# The worker task that renders messages with the model's chat template and generates a reply.
TASK = "chat"
# Which registry models may chat: causal LMs (built-in, downloaded or fine-tuned) serve this task.
MODEL_TASK = "generation"
ROLES = ("system", "user", "assistant")

MAX_TOKENS = IntOption(default=256, ge=1, le=4096)
TEMPERATURE = FloatOption(default=0.7, ge=0.0, le=2.0)
TOP_P = FloatOption(default=1.0, ge=0.0, le=1.0)
MAX_MESSAGES = 500
MAX_MESSAGE_CHARS = 100_000
MAX_STOP = 4  # stop sequences (OpenAI's limit)
MAX_STOP_CHARS = 100

# Seed 004's history page.
HISTORY_LIMIT = IntOption(default=50, ge=1, le=1000)  # the API's largest page (api/pagination.py)

FINISH_REASONS = ("stop", "length")
