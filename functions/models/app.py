"""HTTP Lambda for the models group: the model registry and downloads, predictions and NLP tasks."""

from stratus.handlers.http import http_lambda

app, handler = http_lambda("models")
