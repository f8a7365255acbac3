"""Shared by the evaluation tests (the tiny model fixture is ``tiny_model`` in tests/conftest.py)."""

#: small images and few new tokens keep an evaluation of the 17 demo test samples to seconds
FAST = ["--image-size", "64", "--max-new-tokens", "3", "--no-progress"]
