"""Dataset ingestion: detect the format of an uploaded file, check it is safe, and summarise it.

Pure and local on purpose: everything here works on a file on disk and raises domain errors, so the
same code runs inline in the API request (small uploads) and in the queue worker (large ones), and the
service layer decides what to store.
"""
