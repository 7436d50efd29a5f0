"""AWS adapters. boto3 is imported only inside this package; clients are built in `clients` and injected."""
