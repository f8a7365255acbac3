"""Mapping the absolute paths in RadFM's split files onto the user's raw root.

RadFM's CSV/JSON files hold paths from the authors' cluster
(``/gpfs/home/.../MIMIC-CXR/files/p10/.../x.jpg``). A path is mapped by

1. an explicit ``--path-map OLD=NEW`` (prefix replacement; NEW relative to the raw root), else
2. a prefix learned from an earlier path, else
3. the longest suffix of the path that exists under the raw root; the prefix that was
   stripped is learned, so the file system is searched once per distinct prefix.

The result is a POSIX path relative to the raw root, which is what shards record.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class UnresolvedPath(ValueError):
    reason = "missing_file"


def parse_path_maps(items: list[str] | None) -> list[tuple[str, str]]:
    maps = []
    for item in items or []:
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise ValueError(f"--path-map expects OLD=NEW, got {item!r}")
        maps.append((old.rstrip("/"), new.strip("/")))
    return maps


class PathResolver:
    def __init__(self, raw_root: Path, path_maps: list[tuple[str, str]] | None = None, max_suffix_parts: int = 12):
        self.raw_root = Path(raw_root)
        self._maps = sorted(path_maps or [], key=lambda m: -len(m[0]))
        self._learned: dict[str, str] = {}  # stripped prefix -> replacement under the root
        self._max_parts = max_suffix_parts

    def resolve(self, path: str) -> str:
        """Relative POSIX path under the raw root, or :class:`UnresolvedPath`."""
        text = str(path).strip()
        if not text:
            raise UnresolvedPath("empty path")
        posix = text.replace("\\", "/")
        for old, new in self._maps:
            if posix == old or posix.startswith(old + "/"):
                return _join(new, posix[len(old):])
        for old, new in self._learned.items():
            if posix.startswith(old + "/"):
                return _join(new, posix[len(old):])
        if not posix.startswith("/") and (self.raw_root / posix).exists():
            return str(PurePosixPath(posix))
        parts = PurePosixPath(posix).parts
        start = 1 if posix.startswith("/") else 0
        for i in range(max(start, len(parts) - self._max_parts), len(parts)):
            candidate = PurePosixPath(*parts[i:])
            if (self.raw_root / candidate).exists():
                prefix = "/".join(parts[:i]).replace("//", "/")
                if prefix:
                    self._learned[prefix.rstrip("/") or "/"] = ""
                return str(candidate)
        raise UnresolvedPath(f"no suffix of {text!r} exists under {self.raw_root} (use --path-map OLD=NEW)")

    def learned_prefixes(self) -> dict[str, str]:
        return dict(self._learned)


def _join(new: str, rest: str) -> str:
    rest = rest.lstrip("/")
    return str(PurePosixPath(new, rest)) if new else str(PurePosixPath(rest or "."))
