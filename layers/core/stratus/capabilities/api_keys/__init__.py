"""The api_keys capability."""
