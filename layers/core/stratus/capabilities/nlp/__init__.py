"""NLP tasks (seed 000): classification, QA, NER, summarization, embeddings and generation, answered by the
inference worker."""
