"""HTTP Lambda for the models group: the model registry and downloads, predictions, NLP tasks and custom
tasks."""

from stratus.handlers.http import http_lambda

app, handler = http_lambda("models")
