"""Batched tokenization of a block of texts, with the special tokens around each document."""

from __future__ import annotations

from xlstm_data.documents import Documents
from xlstm_data.stages.parse import TextBlock, count_empty_documents
from xlstm_data.tokenizer import Tokenizer


class Tokenize:
    """Grain map: a block of texts → token documents with BOS/EOS/EOD, in one batched call."""

    def __init__(self, tokenizer: Tokenizer, *, prefix: tuple[int, ...], suffix: tuple[int, ...]):
        self.tokenizer = tokenizer
        self.prefix = prefix
        self.suffix = suffix

    def __call__(self, block: TextBlock) -> Documents:
        documents = self.tokenizer.encode_batch(block.texts, prefix=self.prefix, suffix=self.suffix)
        documents.counts = block.counts
        count_empty_documents(documents)
        return documents
