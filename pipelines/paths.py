"""Input paths: mapping RadFM's absolute cluster paths onto the raw root, and keeping every path inside it.

RadFM's CSV/JSON files hold paths from the authors' cluster
(``/gpfs/home/.../MIMIC-CXR/files/p10/.../x.jpg``). A path is mapped by

1. an explicit ``--path-map OLD=NEW`` (prefix replacement; NEW relative to the raw root), else
2. a prefix learned from an earlier path, else
3. the longest suffix of the path that exists under the raw root; the prefix that was
   stripped is learned, so the file system is searched once per distinct prefix.

The result is a POSIX path relative to the raw root, which is what shards record.

**Confinement.** Every path a build reads (an image, a report, a slice folder and the files in it) must stay inside
the raw root: :func:`confine` normalises it (``a/./b``, ``a/../b``) and refuses an absolute path, one that climbs
out with ``..``, and, after resolving symbolic links, one whose target lies outside the raw root
(:class:`OutsideRoot`, reject reason ``outside_root``). Layouts that link to other disks on purpose pass
``follow_symlinks_outside`` (``--follow-symlinks-outside``); ``..`` and absolute paths are refused even then.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path, PurePosixPath


class UnresolvedPath(ValueError):
    reason = "missing_file"


class OutsideRoot(UnresolvedPath):
    """A path that leaves the raw root (``..``, absolute, or a symbolic link to elsewhere)."""

    reason = "outside_root"


_DRIVE = re.compile(r"^[A-Za-z]:")


def parse_path_maps(items: list[str] | None) -> list[tuple[str, str]]:
    maps = []
    for item in items or []:
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise ValueError(f"--path-map expects OLD=NEW, got {item!r}")
        maps.append((old.rstrip("/"), new.strip("/")))
    return maps


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def confine(raw_root: Path, rel: str, *, follow_symlinks_outside: bool = False) -> str:
    """``rel`` (relative to ``raw_root``) normalised to a POSIX path that stays inside the root, or
    :class:`OutsideRoot`. Symbolic links along the path are resolved and must end inside the root unless
    ``follow_symlinks_outside``. The path need not exist."""
    posix = str(rel).replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        raise OutsideRoot(f"{rel!r} is an absolute path, not one under the raw root")
    norm = posixpath.normpath(posix)
    if norm == ".." or norm.startswith("../"):
        raise OutsideRoot(f"{rel!r} climbs out of the raw root")
    if norm == ".":
        raise UnresolvedPath(f"{rel!r} names the raw root itself, not a file under it")
    if not follow_symlinks_outside:
        root = os.path.realpath(raw_root)
        target = os.path.realpath(os.path.join(root, norm))
        if not _inside(target, root):
            raise OutsideRoot(f"{norm} leads outside the raw root (to {target}) through a symbolic link; "
                              "pass --follow-symlinks-outside if your layout links to other disks on purpose")
    return norm


def confine_tree(raw_root: Path, rel: str, *, follow_symlinks_outside: bool = False) -> str:
    """:func:`confine` for a path about to be read; for a folder (a slice series) also every visible entry in it."""
    norm = confine(raw_root, rel, follow_symlinks_outside=follow_symlinks_outside)
    folder = Path(raw_root) / norm
    if not follow_symlinks_outside and folder.is_dir():
        for entry in sorted(os.listdir(folder)):
            if not entry.startswith("."):
                confine(raw_root, f"{norm}/{entry}")
    return norm


class PathResolver:
    """Maps a source's paths onto the raw root (see the module docstring); every result is confined."""

    def __init__(self, raw_root: Path, path_maps: list[tuple[str, str]] | None = None, max_suffix_parts: int = 12,
                 *, follow_symlinks_outside: bool = False):
        self.raw_root = Path(raw_root)
        self.follow_symlinks_outside = follow_symlinks_outside
        self._maps = sorted(path_maps or [], key=lambda m: -len(m[0]))
        self._learned: dict[str, str] = {}  # stripped prefix -> replacement under the root
        self._max_parts = max_suffix_parts

    def confine(self, rel: str) -> str:
        """``rel`` normalised and checked to stay inside the raw root (:func:`confine`)."""
        return confine(self.raw_root, rel, follow_symlinks_outside=self.follow_symlinks_outside)

    def resolve(self, path: str) -> str:
        """Relative POSIX path under the raw root, or :class:`UnresolvedPath` / :class:`OutsideRoot`."""
        text = str(path).strip()
        if not text:
            raise UnresolvedPath("empty path")
        posix = text.replace("\\", "/")
        for old, new in self._maps:
            if posix == old or posix.startswith(old + "/"):
                return self.confine(_join(new, posix[len(old):]))
        for old, new in self._learned.items():
            if posix.startswith(old + "/"):
                return self.confine(_join(new, posix[len(old):]))
        if ".." in PurePosixPath(posix).parts:
            # never search suffixes of a climbing path: its tail could name a file the row did not mean
            raise OutsideRoot(f"{text!r} contains '..'")
        if not posix.startswith("/") and (self.raw_root / posix).exists():
            return self.confine(posix)
        parts = PurePosixPath(posix).parts
        start = 1 if posix.startswith("/") else 0
        for i in range(max(start, len(parts) - self._max_parts), len(parts)):
            candidate = PurePosixPath(*parts[i:])
            if (self.raw_root / candidate).exists():
                rel = self.confine(str(candidate))
                prefix = "/".join(parts[:i]).replace("//", "/")
                if prefix:
                    self._learned[prefix.rstrip("/") or "/"] = ""
                return rel
        raise UnresolvedPath(f"no suffix of {text!r} exists under {self.raw_root} (use --path-map OLD=NEW)")

    def learned_prefixes(self) -> dict[str, str]:
        return dict(self._learned)


def _join(new: str, rest: str) -> str:
    rest = rest.lstrip("/")
    return str(PurePosixPath(new, rest)) if new else str(PurePosixPath(rest or "."))
