"""The tokenizer as part of the shard contract: what a shard's token ids mean (SPEC §3.3).

RadFM tokenized with transformers 4.28.1's slow ``LlamaTokenizer`` (SentencePiece), added ``<image>``,
``</image>``, ``<image0>`` … as special tokens and then forced pad 0, BOS 1, EOS 2 whatever the folder's
configuration said. This module loads any LLaMA-style SentencePiece tokenizer the same way and names the result
with a :class:`TokenizerIdentity`, which shards (``meta.json`` ``tokenizer`` / ``special_ids``, the manifest's
``tokenizer``), models (``RadFMConfig.tokenizer``) and the trainer compare.

Public API
----------
``load_tokenizer(path=None, max_images=10) -> Tokenizer``
    ``path``: ``None`` / ``"default"`` (the 32,000-piece LLaMA-style model carried by ``mistral-common``), a
    tokenizer folder holding ``tokenizer.model`` (RadFM's ``Language_files`` as shipped, a standard Hugging Face
    Llama folder), or a bare ``tokenizer.model`` file. Raises :class:`TokenizerError` (one line saying what is
    wrong) for anything whose ids would not follow RadFM's layout.
``Tokenizer``
    ``identity``; ``encode_chunk(text) -> [(id, begin, end)]`` (SentencePiece ids with character offsets into
    ``text``; the layout rules that decide *what* is encoded live in ``pipelines.text``);
    ``convert_ids_to_tokens(ids)``, ``decode(ids, skip_special_tokens=False)``,
    ``render(input_ids, labels=None, loss_weight=None)`` (readable token listing); ``hf`` (a ``transformers``
    tokenizer with the same ids, for code that needs that API; not used to build shards).
``TokenizerIdentity``
    Frozen: ``fingerprint``, ``base_vocab``, ``pad_id``, ``bos_id``, ``eos_id`` (compared) and the descriptive
    ``model_sha256``, ``layout``, ``normalizer``, ``source``; ``to_dict()`` / ``from_dict(d)`` /
    ``from_meta(meta)``; ``image_ids`` (``ImageTokenIds``); ``describe()``.
``RADFM_RELEASED``
    The identity ``load_tokenizer`` gives for RadFM's released ``Quick_demo/Language_files`` (checked against the
    real folder by ``tools/radfm_tokens.py``); the official checkpoint carries it.
``fingerprint_of(value)``
    The fingerprint in a ``meta.json`` / manifest ``tokenizer`` value (a string or an identity object).

The fingerprint covers everything that changes ids: the SentencePiece model file (its pieces and its
normalisation rules), the base vocabulary, the pad/BOS/EOS ids and the version of the layout rules (image-token
ids, whitespace handling next to image spans, question/answer join; ``LAYOUT``). Folder settings that RadFM's code
overrode (empty ``bos_token``/``eos_token``/``unk_token`` strings, ``config.json`` bos 0 / eos 1) change nothing
and are not part of it; settings that would change ids are refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from shards_spec.layout import IGNORE_INDEX, IMAGE_SPAN_LEN, IMAGE_TOKENS_PER_IMAGE, ImageTokenIds, image_token_strings

#: Version of the token-layout rules (SPEC §3.3). Part of every fingerprint: changing a rule changes it.
LAYOUT = "radfm-llama/1"
#: RadFM's ids after ``get_tokenizer``: pad is ``<unk>`` (0), BOS ``<s>`` (1), EOS ``</s>`` (2).
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
DEFAULT_TOKENIZER = "default"
MODEL_FILE = "tokenizer.model"
_SPECIAL_PIECES = {PAD_ID: "<unk>", BOS_ID: "<s>", EOS_ID: "</s>"}


class TokenizerError(ValueError):
    """A tokenizer that cannot give RadFM's token layout (message: what is wrong and what to pass instead)."""


# ---------------------------------------------------------------------------------------------- identity
@dataclass(frozen=True)
class TokenizerIdentity:
    """What a shard's token ids mean. Two identities are equal when their fingerprints and ids are."""

    fingerprint: str
    base_vocab: int
    pad_id: int = PAD_ID
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID
    #: sha256 of the SentencePiece model file (``None`` when only a shard's meta was seen)
    model_sha256: str | None = field(default=None, compare=False)
    layout: str | None = field(default=None, compare=False)
    #: e.g. ``"identity, dummy prefix, whitespace kept"`` (from the model file; informative)
    normalizer: str | None = field(default=None, compare=False)
    #: where it was loaded from (``"default"``, a folder); informative
    source: str | None = field(default=None, compare=False)

    @classmethod
    def create(cls, model_sha256: str, base_vocab: int, normalizer: str | None = None, source: str | None = None,
               layout: str = LAYOUT) -> TokenizerIdentity:
        return cls(_fingerprint(layout, model_sha256, base_vocab, PAD_ID, BOS_ID, EOS_ID), base_vocab, PAD_ID, BOS_ID,
                   EOS_ID, model_sha256, layout, normalizer, source)

    @property
    def image_ids(self) -> ImageTokenIds:
        return ImageTokenIds(self.base_vocab)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenizerIdentity:
        """Inverse of ``to_dict``; checks that a full identity's fingerprint matches its fields."""
        known = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or "fingerprint" not in d or "base_vocab" not in d:
            raise ValueError(f"not a tokenizer identity: {d!r}")
        ident = cls(**{k: v for k, v in d.items() if k in known})
        if ident.model_sha256 and ident.layout:
            expect = _fingerprint(ident.layout, ident.model_sha256, ident.base_vocab, ident.pad_id, ident.bos_id,
                                  ident.eos_id)
            if expect != ident.fingerprint:
                raise ValueError(f"tokenizer identity {ident.fingerprint} does not match its fields (expected {expect})")
        return ident

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> TokenizerIdentity:
        """The identity a sample's ``meta.json`` states (``tokenizer`` fingerprint + ``special_ids``)."""
        special = meta.get("special_ids") or {}
        return cls(fingerprint_of(meta["tokenizer"]), int(special["base_vocab"]), int(special.get("pad", PAD_ID)),
                   int(special["bos"]), int(special["eos"]))

    def describe(self) -> str:
        parts = [f"from {self.source}"] if self.source else []
        if self.model_sha256:
            parts.append(f"tokenizer.model sha256 {self.model_sha256[:12]}…")
        parts.append(f"{self.base_vocab} pieces")
        return f"{self.fingerprint} ({', '.join(parts)})"


def _fingerprint(layout: str, model_sha256: str, base_vocab: int, pad: int, bos: int, eos: int) -> str:
    payload = json.dumps({"layout": layout, "model_sha256": model_sha256, "base_vocab": base_vocab,
                          "pad": pad, "bos": bos, "eos": eos}, sort_keys=True)
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def fingerprint_of(value: Any) -> str | None:
    """The fingerprint in a ``tokenizer`` value of ``meta.json`` (a string) or of a manifest (an identity object)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("fingerprint")
    raise ValueError(f"not a tokenizer fingerprint: {value!r}")


#: RadFM's released tokenizer folder (``Quick_demo/Language_files``: LLaMA's ``tokenizer.model``), as
#: ``load_tokenizer`` sees it. ``tools/radfm_tokens.py`` checks this constant against the real folder.
RADFM_RELEASED = TokenizerIdentity.create(
    model_sha256="9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347",
    base_vocab=32000,
    normalizer="identity, dummy prefix, whitespace kept",
    source="RadFM Quick_demo/Language_files (LLaMA tokenizer.model)",
)


# ---------------------------------------------------------------------------------------------- loading
def _cache_dir() -> Path:
    base = os.environ.get("RADFM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "radfm_data")
    return Path(base)


def default_model_file() -> Path:
    """mistral-common's ``tokenizer.model.v1``: a 32,000-piece LLaMA-style SentencePiece model."""
    spec = importlib.util.find_spec("mistral_common")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerError("mistral-common is not installed (it carries the default tokenizer); pass --tokenizer DIR")
    return Path(spec.submodule_search_locations[0]) / "data" / "tokenizer.model.v1"


def _model_only_dir(model_file: Path, sha: str) -> Path:
    """A cache folder holding only ``tokenizer.model`` (a copy of ``model_file``): a folder any loader reads."""
    target = _cache_dir() / f"tokenizer-sp-{sha[:16]}"
    model = target / MODEL_FILE
    if not model.exists():
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f".{MODEL_FILE}.tmp-{os.getpid()}"
        shutil.copyfile(model_file, tmp)
        os.replace(tmp, model)
    return target


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"{path}: unreadable ({exc})") from None


def _folder_added_tokens(folder: Path) -> list[tuple[str, int, str]]:
    """(content, id, file) of every token a Hugging Face folder adds on top of the SentencePiece model."""
    out: list[tuple[str, int, str]] = []
    if (folder / "added_tokens.json").is_file():
        data = _read_json(folder / "added_tokens.json")
        out += [(str(k), int(v), "added_tokens.json") for k, v in (data or {}).items()]
    if (folder / "tokenizer.json").is_file():
        data = _read_json(folder / "tokenizer.json")
        out += [(str(t["content"]), int(t["id"]), "tokenizer.json") for t in (data or {}).get("added_tokens") or []]
    if (folder / "tokenizer_config.json").is_file():
        data = _read_json(folder / "tokenizer_config.json") or {}
        out += [(str(t.get("content")), int(k), "tokenizer_config.json")
                for k, t in (data.get("added_tokens_decoder") or {}).items()]
    return out


def _check_folder(folder: Path, sp, base: int) -> None:
    """Refuse folder settings that would change ids; everything RadFM's code overrode is accepted."""
    cfg_path = folder / "tokenizer_config.json"
    cfg = (_read_json(cfg_path) or {}) if cfg_path.is_file() else {}
    if cfg.get("add_bos_token") is False:
        raise TokenizerError(f"{cfg_path}: add_bos_token is false, but RadFM's layout starts every sample with BOS "
                             "(remove the key)")
    if cfg.get("add_eos_token") is True:
        raise TokenizerError(f"{cfg_path}: add_eos_token is true, but RadFM's layout adds EOS only after the answer "
                             "(remove the key)")
    images = ImageTokenIds(base)
    for content, tid, file in _folder_added_tokens(folder):
        if tid < base:
            expect = sp.id_to_piece(tid)
        elif tid == images.start:
            expect = "<image>"
        elif tid == images.end:
            expect = "</image>"
        else:
            expect = f"<image{tid - images.first_placeholder}>"
        if content != expect:
            raise TokenizerError(f"{folder / file}: token {content!r} has id {tid}, but RadFM's layout has {expect!r} "
                                 f"there (<image> {images.start}, </image> {images.end}, <imageK> {images.first_placeholder}+K); "
                                 "use a folder without added tokens")


def _normalizer(model_bytes: bytes) -> str | None:
    try:
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(model_bytes)
    except Exception:  # descriptive only; the model hash is what identifies it
        return None
    spec = proto.normalizer_spec
    parts = [spec.name or "identity", "dummy prefix" if spec.add_dummy_prefix else "no dummy prefix",
             "extra whitespace removed" if spec.remove_extra_whitespaces else "whitespace kept"]
    return ", ".join(parts)


def load_tokenizer(path: str | os.PathLike | None = None, max_images: int = 10) -> Tokenizer:
    """Load a LLaMA-style SentencePiece tokenizer with RadFM's ids (see the module docstring)."""
    import sentencepiece as spm

    if path is None or str(path) == DEFAULT_TOKENIZER:
        source, model_file, folder = DEFAULT_TOKENIZER, default_model_file(), None
    else:
        p = Path(path).expanduser().resolve()
        if p.is_dir():
            folder, model_file, source = p, p / MODEL_FILE, str(p)
            if not model_file.is_file():
                found = ", ".join(sorted(x.name for x in p.iterdir())[:8]) or "nothing"
                raise TokenizerError(f"{p}: no {MODEL_FILE} in it (found {found}); the shard layout needs a LLaMA-style "
                                     "SentencePiece tokenizer folder or file")
        elif p.is_file():
            folder, model_file, source = None, p, str(p)
        else:
            raise TokenizerError(f"tokenizer {path}: no such folder or file")
    data = model_file.read_bytes()
    sp = spm.SentencePieceProcessor()
    try:
        sp.LoadFromSerializedProto(data)
    except Exception as exc:
        raise TokenizerError(f"{model_file}: not a SentencePiece model ({exc})") from None
    got = (sp.unk_id(), sp.bos_id(), sp.eos_id())
    if got != (PAD_ID, BOS_ID, EOS_ID) or [sp.id_to_piece(i) for i in got] != list(_SPECIAL_PIECES.values()):
        raise TokenizerError(f"{model_file}: unk/BOS/EOS are ids {got} ({[sp.id_to_piece(i) for i in got if i >= 0]}); "
                             "RadFM's layout needs <unk> 0 (also pad), <s> 1, </s> 2 as in LLaMA's tokenizer.model")
    base = sp.get_piece_size()
    if folder is not None:
        _check_folder(folder, sp, base)
    sha = hashlib.sha256(data).hexdigest()
    identity = TokenizerIdentity.create(sha, base, _normalizer(data), source)
    return Tokenizer(identity, sp, model_file, max_images)


# ---------------------------------------------------------------------------------------------- tokenizer
class Tokenizer:
    """A SentencePiece model with RadFM's special ids. Encodes plain text chunks; never adds special tokens."""

    def __init__(self, identity: TokenizerIdentity, sp, model_file: Path, max_images: int = 10):
        self.identity, self.sp, self.model_file, self.max_images = identity, sp, Path(model_file), max_images

    # -- the names code reads most
    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    @property
    def name(self) -> str:
        return self.identity.source or DEFAULT_TOKENIZER

    @property
    def ids(self) -> ImageTokenIds:
        return self.identity.image_ids

    @property
    def pad_id(self) -> int:
        return self.identity.pad_id

    @property
    def bos_id(self) -> int:
        return self.identity.bos_id

    @property
    def eos_id(self) -> int:
        return self.identity.eos_id

    def special_ids(self) -> dict[str, int]:
        """The ``special_ids`` object of ``meta.json``."""
        return {"pad": self.pad_id, "bos": self.bos_id, "eos": self.eos_id, "base_vocab": self.identity.base_vocab}

    # -- encoding
    def encode_chunk(self, text: str) -> list[tuple[int, int, int]]:
        """SentencePiece pieces of ``text`` as ``(id, begin, end)``, offsets in characters of ``text``.

        SentencePiece adds its dummy prefix ``▁`` (a leading lone ``▁`` has an empty range) and falls back to
        byte pieces for characters outside the vocabulary (all but the last byte piece of a character have an
        empty range)."""
        if not text:
            return []
        proto = self.sp.encode(text, return_type="proto")
        if text.isascii():
            return [(p.id, p.begin, p.end) for p in proto.pieces]
        char_at = _byte_to_char(text)
        return [(p.id, char_at[p.begin], char_at[p.end]) for p in proto.pieces]

    def encode_ids(self, text: str) -> list[int]:
        return list(self.sp.encode(text)) if text else []

    # -- display
    def piece(self, token_id: int) -> str:
        base = self.identity.base_vocab
        if token_id < base:
            return self.sp.id_to_piece(int(token_id))
        ids = self.ids
        if token_id == ids.start:
            return "<image>"
        if token_id == ids.end:
            return "</image>"
        return f"<image{token_id - ids.first_placeholder}>"

    def convert_ids_to_tokens(self, ids) -> list[str]:
        return [self.piece(int(t)) for t in ids]

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; pad/BOS/EOS and image tokens are written as their strings unless skipped."""
        out: list[str] = []
        run: list[int] = []
        special = {self.pad_id, self.bos_id, self.eos_id}
        for t in map(int, ids):
            if t in special or t >= self.identity.base_vocab:
                if run:
                    out.append(self.sp.decode(run))
                    run = []
                if not skip_special_tokens:
                    out.append(self.piece(t))
            else:
                run.append(t)
        if run:
            out.append(self.sp.decode(run))
        return "".join(out)

    def render(self, input_ids, labels=None, loss_weight=None, n_question: int | None = None) -> str:
        """A readable listing: tokens separated by ``|`` with ``▁`` kept (so a lone ``▁`` is visible), each image
        span as ``[IMG i]``, the first ``n_question`` tokens (default: those before the first learned label) in
        ``⟦…⟧``, keyword tokens (weight > 1) in ``*…*``."""
        ids = [int(t) for t in input_ids]
        if n_question is None:
            n_question = next((i for i, x in enumerate(labels) if int(x) != IGNORE_INDEX), len(ids)) if labels is not None else 0
        image = self.ids
        parts: list[tuple[str, int]] = []  # (text, index of its first token)
        i = 0
        while i < len(ids):
            t = ids[i]
            if t == image.start and i + 1 < len(ids) and ids[i + 1] >= image.first_placeholder:
                k = (ids[i + 1] - image.first_placeholder) // IMAGE_TOKENS_PER_IMAGE
                if ids[i:i + IMAGE_SPAN_LEN] == image.span(k):
                    parts.append((f"[IMG {k}]", i))
                    i += IMAGE_SPAN_LEN
                    continue
            piece = self.piece(t)
            if loss_weight is not None and float(loss_weight[i]) > 1:
                piece = f"*{piece}*"
            parts.append((piece, i))
            i += 1
        n = sum(1 for _, start in parts if start < n_question)
        left, right = "|".join(p for p, _ in parts[:n]), "|".join(p for p, _ in parts[n:])
        if not n:
            return right
        return f"⟦{left}⟧" + (f"|{right}" if right else "")

    # -- the transformers view
    @cached_property
    def hf(self):
        """A ``transformers`` Llama tokenizer of the same model with pad 0 / BOS 1 / EOS 2 and the image tokens,
        for code that needs that API (e.g. a RadFM-style baseline). Shards are never built through it: newer
        transformers versions treat whitespace next to added tokens differently from RadFM's 4.28.1."""
        from transformers import LlamaTokenizer

        folder = _model_only_dir(self.model_file, self.identity.model_sha256 or self.fingerprint)
        hf = LlamaTokenizer.from_pretrained(str(folder), unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                            pad_token="<unk>")
        hf.add_special_tokens({"additional_special_tokens": image_token_strings(self.max_images)})
        got = hf.convert_tokens_to_ids(["<unk>", "<s>", "</s>", "<image>", "</image>", "<image0>"])
        ids = self.ids
        if got != [PAD_ID, BOS_ID, EOS_ID, ids.start, ids.end, ids.first_placeholder]:
            raise TokenizerError(f"transformers gives ids {got} for <unk> <s> </s> <image> </image> <image0>")
        return hf

    def __repr__(self) -> str:
        return f"Tokenizer({self.identity.describe()})"


def _byte_to_char(text: str) -> list[int]:
    """``char_at[b]``: index of the character that starts at or contains UTF-8 byte ``b`` (length + 1 entries)."""
    out: list[int] = []
    for i, ch in enumerate(text):
        out.extend([i] * len(ch.encode("utf-8")))
    out.append(len(text))
    return out


__all__ = ["BOS_ID", "DEFAULT_TOKENIZER", "EOS_ID", "LAYOUT", "PAD_ID", "RADFM_RELEASED", "Tokenizer", "TokenizerError",
           "TokenizerIdentity", "default_model_file", "fingerprint_of", "load_tokenizer"]
