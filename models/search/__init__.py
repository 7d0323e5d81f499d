"""Search by meaning over the catalog: sentence vectors (embedder), the faiss index, the BM25 baseline."""
