"""The datasets capability."""
