"""The finetune capability."""
