"""HTTP Lambda for the jobs group: training, jobs and their events, fine-tune records and webhooks."""

from stratus.handlers.http import http_lambda

app, handler = http_lambda("jobs")
