"""Local adapters: in-process queue and bus, directory storage, WebSocket hub, subprocess workers.

Nothing here imports boto3, so the local runtime never pays for it.
"""
