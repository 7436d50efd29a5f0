"""Secrets Manager reads at cold start (the MongoDB URI and signing keys never sit in env vars)."""

from __future__ import annotations

import os

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from stratus.errors import ServiceUnavailable


def fetch_secret_string(arn: str) -> str:
    client = boto3.client("secretsmanager", region_name=os.environ.get("AWS_REGION", "us-east-1"))
    try:
        value = client.get_secret_value(SecretId=arn)["SecretString"]
    except (ClientError, BotoCoreError) as e:
        raise ServiceUnavailable(f"cannot read secret {arn}") from e
    return str(value)
