"""HTTP Lambda for the platform group: welcome, health, metrics, auth, users and API keys (and the whole
API's OpenAPI document)."""

from stratus.handlers.http import http_lambda

app, handler = http_lambda("platform")
