"""The shard format as a versioned contract: layout, member encodings, validation.

Everything that writes or reads shards imports its names from here, so that the
format has exactly one definition. See SPEC.md for the prose version.
"""

from shards_spec.layout import (  # noqa: F401
    IMAGE_SPAN_LEN,
    IMAGE_TOKENS_PER_IMAGE,
    SPEC_VERSION,
    STREAMS,
    ImageTokenIds,
)
