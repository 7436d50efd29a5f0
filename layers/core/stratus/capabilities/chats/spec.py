"""What the rest of the system needs to know about chats: the queue message that produces a reply."""

# {"type": REPLY_MESSAGE, "chat_id": str, "message_id": str}: answer the user message `message_id`.
REPLY_MESSAGE = "chat.reply"
