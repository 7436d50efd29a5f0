"""The models capability."""
