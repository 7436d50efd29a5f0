"""What the rest of the system needs to know about webhooks: the queue message of one delivery attempt."""

DELIVER_MESSAGE = "webhook.deliver"
