"""Custom tasks (seed 000): saved user code (tokenizer, model, custom_function) and runs of it in the
inference worker's sandbox (stratus_worker.sandbox), never in the API process."""
