"""Text hygiene applied to every record (pipelines.hygiene): decoding fallback, NFC, control characters."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from pipelines.config import TextConfig
from pipelines.hygiene import clean_record, clean_text, clean_value, decode
from pipelines.records import ImageRef, Record, RecordFields, Reject, TextFixes


@dataclass(frozen=True)
class Fields(RecordFields):
    question: str
    answers: tuple[str, ...] = ()


def _record(question: str, answers: tuple[str, ...] = (), source_id: str = "s1") -> Record:
    return Record(dataset="ds", source_id=source_id, split="train", stream="2d", images=(ImageRef("a.jpg", "image2d"),),
                  fields=Fields(question, answers), modality="X-ray")


def test_clean_text_leaves_ordinary_text_alone():
    for text in ("Findings: clear.\n\tImpression: normal.", "Épanchement pleural — 3 cm", ""):
        assert clean_text(text) == (unicodedata.normalize("NFC", text), TextFixes())


def test_control_characters_are_removed_and_counted():
    text, fixes = clean_text("a\x00b\x07c\x1bd\x7fe\x85f\tg\nh")
    assert text == "abcdef\tg\nh" and fixes == TextFixes(control_chars=5)
    assert clean_text("one\r\ntwo\rthree") == ("one\ntwo\nthree", TextFixes())  # line endings are not controls


def test_nfc_and_the_non_utf8_fallback():
    assert clean_text("cafe\u0301")[0] == "caf\u00e9"
    raw = "café “quoted” ".encode("cp1252") + "— ok".encode("utf-8")  # mixed: cp1252 bytes, then UTF-8
    text, fixes = clean_text(decode(raw))
    assert text == "café “quoted” — ok" and fixes == TextFixes(non_utf8=3)
    assert clean_text(decode(b"\x81x"))[0] == "x"  # undefined in cp1252: Latin-1 U+0081, a C1 control, removed
    assert clean_text("lone \ud800 surrogate") == ("lone \ufffd surrogate", TextFixes(non_utf8=1))
    assert decode(b"\xef\xbb\xbfBOM") == "BOM"


def test_clean_record_counts_and_rejects_binary_text():
    record = clean_record(_record("What is\x07 seen?", ("caf\udce9",)), TextConfig())
    assert isinstance(record, Record)
    assert record.fields == Fields("What is seen?", ("café",)) and record.text_fixes == TextFixes(1, 1)
    plain = _record("What is seen?")
    assert clean_record(plain, TextConfig()) is plain
    binary = clean_record(_record("x\x00" * 20), TextConfig())
    assert isinstance(binary, Reject) and binary.reason == "bad_text" and "20 control characters" in binary.message
    long_text = "word " * 200 + "\x0c" * 40  # 40 controls in 1040 characters: under 5 %, over the floor of 8
    assert isinstance(clean_record(_record(long_text), TextConfig()), Record)
    assert isinstance(clean_record(_record("short" + "\x0c" * 8), TextConfig()), Record)  # the floor
    assert isinstance(clean_record(_record("short" + "\x0c" * 9), TextConfig()), Reject)


def test_clean_value_walks_dataclasses_and_tuples():
    assert clean_value(Fields("a\x00", ("b\x07", "c"))) == Fields("a", ("b", "c"))
