"""The webhooks capability."""
