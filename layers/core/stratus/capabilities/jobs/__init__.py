"""The jobs capability."""
