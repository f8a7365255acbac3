"""Reading shards back sample by sample (bounded, extraction-free): used by the validator,
``pipelines.inspect`` and tests. Training streams use webdataset with the same codec."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shards_spec.codec import decode_sample
from shards_spec.tario import Member, iter_members, split_member_name


@dataclass
class RawSample:
    key: str
    members: dict[str, Member]  # field -> member (with data)

    def decode(self) -> dict[str, Any]:
        """Field -> decoded member; the image under ``vision.npy.zst`` whichever member held it."""
        return decode_sample({field: m.data or b"" for field, m in self.members.items()})


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
