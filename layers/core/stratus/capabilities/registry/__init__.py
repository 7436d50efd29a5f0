"""The registry capability."""
