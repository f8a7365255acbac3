"""Reading shards back sample by sample (bounded, extraction-free): used by the validator,
``pipelines.inspect`` and tests. Training streams use webdataset with the same codec."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shards_spec.codec import decode_member
from shards_spec.tario import Member, iter_members, split_member_name


@dataclass
class RawSample:
    key: str
    members: dict[str, Member]  # field -> member (with data)

    def decode(self) -> dict[str, Any]:
        return {field: decode_member(field, m.data or b"") for field, m in self.members.items()}


class GroupingError(ValueError):
    """Members of one key are not adjacent, or a member name has no field."""


def iter_raw_samples(path: str | Path, *, read_data: bool = True, **limits) -> Iterator[RawSample]:
    """Group consecutive members by key. Raises :class:`GroupingError` when a key comes
    back after another key (webdataset would silently split such a sample)."""
    seen: set[str] = set()
    current: RawSample | None = None
    for member in iter_members(path, read_data=read_data, **limits):
        key, field = split_member_name(member.name)
        if not field:
            raise GroupingError(f"member {member.name!r} has no field extension")
        if current is not None and key == current.key:
            if field in current.members:
                raise GroupingError(f"duplicate member {member.name!r}")
            current.members[field] = member
            continue
        if current is not None:
            yield current
        if key in seen:
            raise GroupingError(f"key {key!r} appears again after other keys (members not contiguous)")
        seen.add(key)
        current = RawSample(key, {field: member})
    if current is not None:
        yield current


def iter_indexed_samples(tar: str, **limits) -> Iterator[RawSample]:
    """The samples of a shard on object storage, read through its index sidecar: one ranged read per sample, never
    the whole object. Member sizes are bounded as in :func:`shards_spec.tario.iter_members`; a span that does not
    hold its members raises ``ValueError``."""
    import json

    from shards_spec import storage
    from shards_spec.layout import index_path
    from shards_spec.tario import MAX_MEMBER_BYTES, UnsafeTar

    max_member = limits.get("max_member_bytes", MAX_MEMBER_BYTES)
    index = json.loads(storage.read_bytes(index_path(tar)))
    for entry in index["samples"]:
        members = {field: (int(o), int(n)) for field, (o, n) in entry["members"].items()}
        if any(n > max_member or n < 0 or o < 0 for o, n in members.values()):
            raise UnsafeTar(f"{entry['key']}: member sizes out of bounds in the index")
        lo = min(o for o, _ in members.values())
        hi = max(o + n for o, n in members.values())
        span = storage.read_range(tar, lo, hi - lo)
        if len(span) < hi - lo:
            raise ValueError(f"{entry['key']}: the shard ends at byte {lo + len(span)}, its members at {hi}")
        yield RawSample(entry["key"], {field: Member(f"{entry['key']}.{field}", o - 512, o, n, span[o - lo:o - lo + n])
                                       for field, (o, n) in members.items()})
