"""MIMIC-CXR free-text reports -> RadFM's answer ``Findings: … Impression: …``.

The rules follow what the official MIMIC-CXR tooling (MIT-LCP/mimic-cxr, ``txt/section_parser.py`` and
``create_section_files.py``) documents about the reports' shapes, with one difference that keeps text the official
parser loses:

* A heading is a name followed by ``:`` at the start of a line. The names that tooling normalises are recognised in
  any case (``FINDINGS:``, ``Findings:``, ``findings:``), with their variants and typos (``FINDINGS AND
  IMPRESSION`` and ``FINDINGS/IMPRESSION`` and ``CONCLUSION`` are the impression, ``IMPRESSON`` is too,
  ``FINDNGS`` is the findings, ``REASON FOR EXAM`` is the indication …).
* An upper-case heading that contains a main section's name (``IMPRESSION/RECOMMENDATIONS``, ``PORTABLE CHEST
  FINDINGS``) is that section. One that names the study (``CHEST, PA AND LATERAL``, ``PORTABLE AP VIEW``) starts
  the findings when it comes before them (the official rule), and is a sub-heading when it comes inside them.
* Any other heading (``LUNGS:``, ``HEART:``, ``LINES AND TUBES:``) is a **sub-heading**: it and its text stay in the
  section they are in (the official parser starts a new, unnamed section there, which empties the findings).
* Empty findings or impression sections are ignored (a title like ``FINDINGS:`` followed by ``IMPRESSION:``); of
  several sections of one kind, the last counts.
* A report without findings and impression: when it has no headings at all (a ``FINAL REPORT`` body) or its last
  section is one the radiologist wrote the report after (comparison, indication, history, examination,
  technique), the paragraphs after that section's first one are the findings (the official ``last_paragraph``
  rule). An addendum, a wet read or a notification alone is not a report: :func:`report_answer` returns None.

Whitespace is collapsed to single spaces.
"""

from __future__ import annotations

import re

#: Heading names (lower case, single spaces) -> section, as the official tooling normalises them.
SECTION_NAMES: dict[str, str] = {
    **dict.fromkeys(("impression", "conclusion", "findings and impression", "findings/impression",
                     "findings/ impression", "impression and findings", "impresson", "imprression", "imoression",
                     "impressoin", "imprssion", "impresion", "imperssion", "mpression", "impession", "concusion",
                     "coinclusion"), "impression"),
    **dict.fromkeys(("findings", "finding", "findins", "findindgs", "findgings", "findngs", "findnings", "finidngs",
                     "reference findings", "chest, two views"), "findings"),
    **dict.fromkeys(("comparison", "comparisons", "reference exam", "comparison exam", "comparison film",
                     "comparision", "comparsion", "comparrison", "comparisions"), "comparison"),
    **dict.fromkeys(("indication", "reason for examination", "reason for exam", "clinical indication", "idication"),
                    "indication"),
    **dict.fromkeys(("history", "clinical history", "clinical information", "patient history", "pfi"), "history"),
    **dict.fromkeys(("examination", "exam", "type of examination"), "examination"),
    **dict.fromkeys(("recommendation(s)", "recommendations", "recommendation"), "recommendations"),
    **dict.fromkeys(("wet read", "wetread"), "wet read"),
    "technique": "technique",
    "notification": "notification",
    "addendum": "addendum",
    "date": "date",
    "comment": "comment",
}
#: An upper-case heading containing one of these (checked in this order) is that section.
MAIN_WORDS = (("impression", "impression"), ("conclusion", "impression"), ("findings", "findings"),
              ("history", "history"), ("comparison", "comparison"), ("addendum", "addendum"))
#: An upper-case heading naming the study (it starts the findings when none has begun).
STUDY_HEADING = re.compile(r"\b(chest|portable|pa and lat|lateral and pa|ap and lateral|lateral and ap|frontal and|"
                           r"two views|one view|frontal view|pa view|ap view|lateral view|bone window|"
                           r"frontal upright|frontal semi-upright|ribs)")
#: Sections the report text may follow without a heading of its own (the last-paragraph rule).
BODY_AFTER = ("preamble", "comparison", "indication", "history", "examination", "technique")

_HEADING = re.compile(r"^[ \t]*(?P<name>[A-Za-z][A-Za-z ()/,&'-]{0,48}?)[ \t]*:(?=\s|$)", re.MULTILINE)
_TITLE = re.compile(r"^[ \t]*FINAL REPORT[ \t]*$", re.MULTILINE)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _section_of(name: str, current: str) -> str | None:
    """The section a heading starts, or None for a sub-heading (see the module docstring)."""
    lower = " ".join(name.lower().split())
    if lower in SECTION_NAMES:
        return SECTION_NAMES[lower]
    if not name.isupper():
        return None
    for word, section in MAIN_WORDS:
        if word in lower:
            return section
    if current not in ("findings", "impression") and STUDY_HEADING.search(lower):
        return "findings"
    return None


def parse_sections(text: str) -> list[tuple[str, str]]:
    """``(section, raw text)`` in report order; the text before the first heading is the ``preamble``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    sections = []
    current, start = "preamble", 0
    for m in _HEADING.finditer(text):
        section = _section_of(m["name"], current)
        if section is None:
            continue
        sections.append((current, text[start : m.start()]))
        current, start = section, m.end()
    sections.append((current, text[start:]))
    return sections


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _last(sections: list[tuple[str, str]], name: str) -> str:
    found = [_collapse(body) for section, body in sections if section == name and _collapse(body)]
    return found[-1] if found else ""


def _body_after(sections: list[tuple[str, str]]) -> str:
    """The last-paragraph rule: the paragraphs after the last section's first one."""
    section, body = sections[-1]
    if section not in BODY_AFTER:
        return ""
    paragraphs = [p for p in _BLANK_LINE.split(_TITLE.sub("", body)) if p.strip()]
    if section == "preamble" and len(paragraphs) == 1:  # a one-paragraph body: drop its title line, if any
        lines = [line for line in paragraphs[0].split("\n") if line.strip()]
        if len(lines) > 1 and lines[0].strip().isupper():
            lines = lines[1:]
        return _collapse(" ".join(lines))
    return _collapse(" ".join(paragraphs[1:]))


def report_sections(text: str) -> dict[str, str]:
    """Each section's text (the last one of a kind, whitespace collapsed), upper-case names as in the report."""
    sections = parse_sections(text)
    return {section.upper(): _last(sections, section) for section, _ in sections}


def report_answer(text: str) -> str | None:
    """RadFM's answer format: ``Findings: … Impression: …`` (either part may be absent), or None when the report
    holds neither (see the module docstring)."""
    sections = parse_sections(text)
    findings, impression = _last(sections, "findings"), _last(sections, "impression")
    if not (findings or impression):
        findings = _body_after(sections)
    parts = [f"Findings: {findings}" if findings else "", f"Impression: {impression}" if impression else ""]
    answer = " ".join(p for p in parts if p)
    return answer or None
