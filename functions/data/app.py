"""HTTP Lambda for the data group: datasets (uploads, presigned uploads, rows) and files."""

from stratus.handlers.http import http_lambda

app, handler = http_lambda("data")
