"""One loader for sentencepiece models, HF `tokenizer.json` files and HF tokenizer folders.

Every tokenizer encodes whole batches of texts in one call and returns flat numpy arrays, so the
pipeline never loops over tokens in Python. Special tokens are never added by the tokenizer
itself (no post-processor, no truncation, no padding): BOS/EOS/EOD are the pipeline's job, so a
tokenizer file that enables truncation cannot silently cut documents.
"""

from __future__ import annotations

import abc
import functools
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from xlstm_data.documents import Documents
from xlstm_data.errors import ConfigError, DataError

LOGGER = logging.getLogger(__name__)

HF_TOKENIZER_FILE = "tokenizer.json"
_HF_CONFIG_FILES = ("tokenizer_config.json", "special_tokens_map.json")
# Names used by common HF tokenizers when their config files do not say which token is which.
_BOS_CANDIDATES = ("<s>", "<|begin_of_text|>", "<bos>", "[CLS]", "<|endoftext|>")
_EOS_CANDIDATES = ("</s>", "<|end_of_text|>", "<eos>", "[SEP]", "<|endoftext|>")
_PAD_CANDIDATES = ("<pad>", "[PAD]", "<|pad|>")


class Tokenizer(abc.ABC):
    """What the pipeline needs of a tokenizer: batched encoding, decoding and special ids."""

    path: str
    vocab_size: int
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None

    @abc.abstractmethod
    def encode_batch(
        self, texts: list[str], *, prefix: tuple[int, ...] = (), suffix: tuple[int, ...] = ()
    ) -> Documents:
        """Tokens of every text, back to back, with their lengths; `prefix` and `suffix` ids
        wrap every non-empty text (see `Documents.from_lists`)."""

    @abc.abstractmethod
    def decode(self, ids: list[int] | np.ndarray) -> str:
        """Text of a token sequence (special tokens included, for inspection)."""

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 of the tokenizer files' contents: caches and checkpoints use it to catch a swap
        (a copied or renamed file keeps its fingerprint)."""
        digest = hashlib.sha256()
        for file in sorted(self._files(), key=lambda f: f.name):
            digest.update(hashlib.sha256(file.read_bytes()).digest())
        return digest.hexdigest()

    @abc.abstractmethod
    def _files(self) -> list[Path]:
        """The files whose bytes define this tokenizer."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.path!r}, vocab_size={self.vocab_size}, "
            f"bos_id={self.bos_id}, eos_id={self.eos_id}, pad_id={self.pad_id})"
        )


class SentencePieceTokenizer(Tokenizer):
    def __init__(self, model_file: str | os.PathLike):
        import sentencepiece

        self.path = str(model_file)
        try:
            self._processor = sentencepiece.SentencePieceProcessor(model_file=self.path)
        except Exception as error:  # sentencepiece raises OSError/RuntimeError for bad files
            raise DataError(
                f"Tokenizer {self.path} is not a readable sentencepiece model ({error}); point "
                "tokenizer_path at the model file the data was tokenized with."
            ) from error
        self.vocab_size = self._processor.get_piece_size()
        self.bos_id = _non_negative(self._processor.bos_id())
        self.eos_id = _non_negative(self._processor.eos_id())
        self.pad_id = _non_negative(self._processor.pad_id())

    def encode_batch(
        self, texts: list[str], *, prefix: tuple[int, ...] = (), suffix: tuple[int, ...] = ()
    ) -> Documents:
        ids = self._processor.encode(texts, out_type=int)
        return Documents.from_lists(ids, prefix=prefix, suffix=suffix)

    def decode(self, ids: list[int] | np.ndarray) -> str:
        return self._processor.decode([int(i) for i in ids])

    def _files(self) -> list[Path]:
        return [Path(self.path)]

    def __getstate__(self) -> dict:
        # The processor is a C++ object: worker processes reload it from the file.
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])


class HFTokenizer(Tokenizer):
    """A `tokenizers.Tokenizer` from a `tokenizer.json`, with special ids from its config files."""

    def __init__(self, tokenizer_file: str | os.PathLike):
        import tokenizers

        self.path = str(tokenizer_file)
        try:
            self._tokenizer = tokenizers.Tokenizer.from_file(self.path)
        except Exception as error:  # tokenizers raises a bare Exception for bad JSON
            raise DataError(
                f"Tokenizer {self.path} is not a readable HF tokenizer.json ({error}); replace "
                "the file (is it truncated?)."
            ) from error
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.vocab_size = self._tokenizer.get_vocab_size(with_added_tokens=True)
        names = _special_token_names(Path(self.path).parent)
        self.bos_id = self._token_id(
            names.get("bos_token") or names.get("cls_token"), _BOS_CANDIDATES
        )
        self.eos_id = self._token_id(
            names.get("eos_token") or names.get("sep_token"), _EOS_CANDIDATES
        )
        self.pad_id = self._token_id(names.get("pad_token"), _PAD_CANDIDATES)

    def _token_id(self, name: str | None, candidates: tuple[str, ...]) -> int | None:
        for token in (name, *candidates):
            if token is not None and (token_id := self._tokenizer.token_to_id(token)) is not None:
                return token_id
        return None

    def encode_batch(
        self, texts: list[str], *, prefix: tuple[int, ...] = (), suffix: tuple[int, ...] = ()
    ) -> Documents:
        encodings = self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        return Documents.from_lists([e.ids for e in encodings], prefix=prefix, suffix=suffix)

    def decode(self, ids: list[int] | np.ndarray) -> str:
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def _files(self) -> list[Path]:
        folder = Path(self.path).parent
        return [Path(self.path)] + [folder / n for n in _HF_CONFIG_FILES if (folder / n).is_file()]

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])


def _non_negative(token_id: int) -> int | None:
    return token_id if token_id >= 0 else None


def _special_token_names(folder: Path) -> dict[str, str]:
    """Special token strings from `tokenizer_config.json` / `special_tokens_map.json`."""
    names: dict[str, str] = {}
    for file_name in reversed(_HF_CONFIG_FILES):
        file = folder / file_name
        if not file.is_file():
            continue
        config = json.loads(file.read_text())
        for key in ("bos_token", "eos_token", "pad_token", "cls_token", "sep_token"):
            value = config.get(key)
            if isinstance(value, dict):  # AddedToken serialised as {"content": ...}
                value = value.get("content")
            if isinstance(value, str):
                names[key] = value
    return names


@functools.lru_cache(maxsize=16)
def load_tokenizer(
    tokenizer_path: str | os.PathLike,
    hf_access_token: str | None = None,
    cache_dir: str | None = None,
) -> Tokenizer:
    """Loads a sentencepiece `.model`, an HF `tokenizer.json`, an HF folder or an HF hub name.

    A hub name (e.g. `gpt2`) is fetched once with `huggingface_hub` into `cache_dir`; every
    other form is read from the local disk.
    """
    path = Path(tokenizer_path).expanduser()
    if path.is_dir():
        if (path / HF_TOKENIZER_FILE).is_file():
            return HFTokenizer(path / HF_TOKENIZER_FILE)
        models = sorted(path.glob("*.model"))
        if models:
            return SentencePieceTokenizer(models[0])
        raise ConfigError(
            f"tokenizer_path {str(path)!r} is a folder without {HF_TOKENIZER_FILE} or a "
            "sentencepiece *.model file; point tokenizer_path at one of those."
        )
    if path.is_file():
        if path.suffix == ".json":
            return HFTokenizer(path)
        return SentencePieceTokenizer(path)
    if str(tokenizer_path).startswith((".", "/", "~")) or path.suffix in (".model", ".json"):
        raise ConfigError(f"tokenizer_path {str(tokenizer_path)!r} does not exist.")
    return HFTokenizer(_download_hub_tokenizer(str(tokenizer_path), hf_access_token, cache_dir))


def _download_hub_tokenizer(name: str, token: str | None, cache_dir: str | None) -> Path:
    from huggingface_hub import hf_hub_download

    LOGGER.info("Fetching tokenizer %r from the HF hub.", name)
    try:
        file = Path(hf_hub_download(name, HF_TOKENIZER_FILE, token=token, cache_dir=cache_dir))
    except Exception as error:
        raise ConfigError(
            f"tokenizer_path {name!r} is neither a local file/folder nor a reachable HF hub "
            f"repository with a {HF_TOKENIZER_FILE} ({error}). Give a local path instead."
        ) from error
    for extra in _HF_CONFIG_FILES:
        try:
            hf_hub_download(name, extra, token=token, cache_dir=cache_dir)
        except Exception:  # optional files; special ids then come from known token names
            LOGGER.debug("No %s in hub repository %s.", extra, name)
    return file
