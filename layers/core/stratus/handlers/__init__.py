"""Event-source glue shared by the Lambda entry points under functions/ (kept here so it is tested)."""
