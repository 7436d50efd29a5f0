"""The meta capability."""
