"""Batch and stream ingestion: readers, the validation gate, the event lake and its quarantine."""
