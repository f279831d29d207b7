"""Generated corpora and tiny tokenizers: the demo's embedded default data, also used by tests
and benchmarks (nothing is downloaded). Shards are written with
`xlstm_data.sources.array_record.write_array_record_shards`.

Documents are pseudo-English with a realistic length spread: log-normal, many short documents
and a few very long ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ne",
    "ra",
    "tu",
    "shi",
    "po",
    "ve",
    "da",
    "qua",
    "ri",
    "en",
    "ar",
    "to",
    "sa",
    "lu",
    "gre",
    "mon",
    "bel",
    "fi",
    "o",
    "stra",
    "ix",
)


def _words(rng: np.random.Generator, count: int) -> list[str]:
    words = []
    for _ in range(count):
        parts = rng.choice(len(_SYLLABLES), size=int(rng.integers(1, 4)))
        words.append("".join(_SYLLABLES[p] for p in parts))
    return words


def generate_documents(
    count: int,
    *,
    seed: int = 0,
    median_words: float = 60,
    sigma: float = 1.0,
    max_words: int = 20_000,
) -> list[str]:
    """`count` documents whose word counts are log-normal around `median_words`."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array(_words(rng, 2_000))
    # Zipf-like word frequencies, as in real text.
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    lengths = np.clip(rng.lognormal(np.log(median_words), sigma, count), 1, max_words).astype(int)
    all_words = vocabulary[rng.choice(len(vocabulary), size=int(lengths.sum()), p=weights)]
    documents, start = [], 0
    for length in lengths.tolist():
        words = all_words[start : start + length]
        start += length
        sentences = [" ".join(words[i : i + 12]).capitalize() + "." for i in range(0, length, 12)]
        documents.append(" ".join(sentences))
    return documents


def train_sentencepiece(
    texts: Iterable[str],
    model_prefix: str | os.PathLike,
    *,
    vocab_size: int = 512,
    model_type: str = "bpe",
) -> Path:
    """A small sentencepiece model (pad 0, bos 1, eos 2, unk 3) trained on `texts`."""
    import sentencepiece

    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(model_prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
        num_threads=2,
    )
    return Path(f"{model_prefix}.model")


def train_hf_bpe(texts: Iterable[str], folder: str | os.PathLike, *, vocab_size: int = 512) -> Path:
    """A small HF BPE tokenizer folder (tokenizer.json + tokenizer_config.json)."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
        )
    )
    return folder
