"""Seed 003's chats and messages, and the assistant that answers a user's message in the background."""
