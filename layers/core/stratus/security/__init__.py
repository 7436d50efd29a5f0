"""Credentials: password hashing, JWTs and API keys."""
