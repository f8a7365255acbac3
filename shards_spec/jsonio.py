"""JSON files of the format (index sidecars, completion markers, manifests): one way to write them, one to read.

Written files are UTF-8, keys sorted, one-space indent and a final newline, so equal content gives equal bytes.
``meta.json`` members are compact instead (``shards_spec.codec.encode_meta``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shards_spec.tario import atomic_write_bytes


def json_bytes(obj: Any) -> bytes:
    """UTF-8 JSON; a lone surrogate (a file name that is not UTF-8) is written as its ``\\udcXX`` escape."""
    return (json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode("utf-8", "backslashreplace")


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` atomically (temporary name, then rename)."""
    atomic_write_bytes(Path(path), json_bytes(obj))


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
