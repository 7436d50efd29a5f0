"""Pydantic request and response models (Create / Update / Public variants per resource)."""
