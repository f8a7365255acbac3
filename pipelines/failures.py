"""Whose failure is it: the data's (a reject with a specific reason) or ours (``internal_error``)?

A build catches every exception that turning one input into a sample can raise, so that no single input can abort
it. That net must not hide our own bugs as data rejects. The rule, used by the image decoders' nets
(:func:`pipelines.imaging.errors.decoding`) and by the build when it reports an ``internal_error``:

* an exception raised inside a library (the deepest frame of its traceback is outside this project's packages) on
  the bytes it was handed is the input's fault;
* an exception of a programming-error type (``TypeError``, ``KeyError``, ``AttributeError``, ``IndexError``,
  ``NameError``, ``AssertionError``, ``RuntimeError`` …) raised by our own code is ours, wherever it is caught.

An ``internal_error`` names the exception type, its message and the project frame where it rose
(``pipelines/imaging/intensity.py:88 in luma``), so the report points at the line to fix.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The project's own packages (a ``.venv`` inside the checkout is not one of them).
PROJECT_DIRS = tuple(str(ROOT / name) + os.sep for name in ("pipelines", "shards_spec", "model", "train"))

#: Exception types that, raised by our own code, are bugs rather than statements about an input.
BUG_TYPES: tuple[type[BaseException], ...] = (
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    NameError,
    AssertionError,
    NotImplementedError,
    RuntimeError,
    SyntaxError,
    ZeroDivisionError,
)


def _in_project(filename: str) -> bool:
    return os.path.abspath(filename).startswith(PROJECT_DIRS)


def project_frame(exc: BaseException) -> str | None:
    """The innermost frame of ``exc``'s traceback in this project's code, as ``path:line in function``."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _in_project(f.filename)]
    if not frames:
        return None
    f = frames[-1]
    return f"{Path(os.path.abspath(f.filename)).relative_to(ROOT).as_posix()}:{f.lineno} in {f.name}"


def raised_in_project(exc: BaseException) -> bool:
    """Whether the deepest frame of ``exc``'s traceback is this project's code (not a library's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and _in_project(frames[-1].filename)


def is_our_bug(exc: BaseException) -> bool:
    """A programming-error type raised by our own code: never to be reported as a bad input."""
    return isinstance(exc, BUG_TYPES) and raised_in_project(exc)


def describe(exc: BaseException) -> str:
    """``TypeError: message (at pipelines/x.py:12 in f)``: what an ``internal_error`` reject says."""
    frame = project_frame(exc)
    message = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {message}" + (f" (at {frame})" if frame else "")
