"""Adapters behind the ports: `aws` (boto3; imported only when runtime is "aws") and `local` (in-process)."""
