"""The keyword baseline search by meaning is measured against: BM25 over the same item texts.

``bm25s`` (sparse-matrix BM25, numpy only) with English stop words and the Snowball stemmer from
``nltk`` (already installed with Evidently), so "earbud" finds "earbuds" and the baseline is a fair one,
not a strawman. DuckDB's full-text extension would be the SQL alternative, but it is downloaded at run
time and the PyPI build of it does not load into the pinned DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _stemmer() -> Callable[[list[str]], list[str]]:
    """bm25s stems the vocabulary in one call: a list of words in, their stems out."""
    from nltk.stem.snowball import SnowballStemmer

    stem = SnowballStemmer("english").stem
    return lambda words: [stem(w) for w in words]


class KeywordIndex:
    """BM25 over ``texts``; rows of the results are positions in ``texts``."""

    def __init__(self, texts: Sequence[str]) -> None:
        import bm25s

        self._stem = _stemmer()
        self.size = len(texts)
        self.model = bm25s.BM25()
        tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=self._stem, show_progress=False)
        self.model.index(tokens, show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) per query, best first; a query sharing no word with any text gets rows -1."""
        import bm25s

        k = max(1, min(k, self.size))
        tokens = bm25s.tokenize(list(queries), stopwords="en", stemmer=self._stem, show_progress=False)
        rows, scores = self.model.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        rows = np.asarray(rows, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        return scores, np.where(scores > 0, rows, -1)
