"""A generated corpus of hostile inputs: one small raw tree per failure a build must survive, each with what the
build has to make of it. Nothing binary is committed; every file is written here.

    python tests/pipelines/hostile_corpus.py OUT        # writes OUT/<case>/<dataset>/..., prints each case

Each :class:`Case` writes a dataset's raw root (MIMIC-CXR in RadFM or native mode, or Rad3D) holding good rows and
the hostile input, and declares the exact outcome: the number of samples, the rejects by reason, and how many data
rows of readable input files it wrote, so a test can check that every row is a sample or a reject (equality), or
the one-line error the build must stop with. ``tests/pipelines/test_hostile.py`` runs every case through the real
build.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

MIMIC_PREFIX = "/gpfs/home/cs/leijiayu/data/MIMIC-CXR/"
RAD3D_PREFIX = "/mnt/petrelfs/share_data/radiopaedia/"
LABEL = "Findings: The lungs are clear. Impression: No acute process."
REPORT = ("                                 FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n \n"
          " FINDINGS:  The lungs are clear.  No effusion.\n \n IMPRESSION:  No acute process.\n")


# ------------------------------------------------------------------------------------------------- content
def image_pixels(seed: int, colour: bool = False, size: tuple[int, int] = (40, 48)) -> np.ndarray:
    """A small non-constant picture (a gradient with a seeded bright block), grey or colour."""
    h, w = size
    rng = np.random.default_rng(seed)
    grey = (np.add.outer(np.arange(h) * 3, np.arange(w) * 2) % 200 + 20).astype(np.uint8)
    y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
    grey[y : y + h // 3, x : x + w // 3] = 250
    if not colour:
        return grey
    return np.stack([grey, np.roll(grey, 7, axis=1), 255 - grey], axis=-1)


def jpeg(pixels: np.ndarray, **save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95, **save)
    return buf.getvalue()


def put(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------- MIMIC, RadFM mode
@dataclass
class MimicRadfm:
    """MIMIC-CXR in RadFM mode: ``files/p10/p<subject>/s<study>/<id>.jpg`` and RadFM's caption CSVs."""

    root: Path
    train: list[list[str]] = field(default_factory=list)
    test: list[list[str]] = field(default_factory=list)

    def image(self, n: int, data: bytes | None = None, suffix: str = ".jpg") -> str:
        """Write image ``n`` (a grey JPEG unless ``data``) and return its path relative to the root."""
        rel = f"files/p10/p100000{n:02d}/s5000{n:04d}/img{n}{suffix}"
        put(self.root / rel, data if data is not None else jpeg(image_pixels(n)))
        return rel

    def good(self, n: int, split: str = "train", label: str = LABEL) -> None:
        (self.train if split == "train" else self.test).append([MIMIC_PREFIX + self.image(n), label])

    def write(self) -> int:
        """Write both CSVs; returns their data rows."""
        for name, rows in (("train", self.train), ("test", self.test)):
            put(self.root / "radfm" / f"mimic_caption_{name}.csv", csv_text(["image_path", "label"], rows))
        return len(self.train) + len(self.test)


def _filled(tree, add: Callable[[int, str], None], n_train: int, n_test: int):
    """``tree`` with items 0 .. n_train-1 in train and the next n_test in test."""
    for n in range(n_train + n_test):
        add(n, "train" if n < n_train else "test")
    return tree


def mimic_radfm(root: Path, n_train: int = 4, n_test: int = 2) -> MimicRadfm:
    tree = MimicRadfm(root)
    return _filled(tree, tree.good, n_train, n_test)


# ------------------------------------------------------------------------------------------------- MIMIC, native mode
@dataclass
class MimicNative:
    """MIMIC-CXR's own layout: the split file, images and reports (one image per study here)."""

    root: Path
    rows: list[list[str]] = field(default_factory=list)

    def study(self, n: int, split: str = "train", report: bytes | str = REPORT, dicom_id: str | None = None) -> str:
        subject, study = f"100000{n:02d}", f"5000{n:04d}"
        dicom = dicom_id or f"{n:08x}-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd"
        folder = f"files/p{subject[:2]}/p{subject}/s{study}"
        if dicom_id is None:
            put(self.root / folder / f"{dicom}.jpg", jpeg(image_pixels(n)))
        if report is not None:
            put(self.root / f"{folder}.txt", report)
        self.rows.append([dicom, study, subject, split])
        return folder

    def write(self, raw_text: str | None = None, header: list[str] | None = None, metadata: bool = True) -> int:
        text = raw_text if raw_text is not None else csv_text(header or ["dicom_id", "study_id", "subject_id", "split"],
                                                              self.rows)
        put(self.root / "mimic-cxr-2.0.0-split.csv.gz", gzip.compress(text.encode("utf-8"), mtime=0))
        if metadata:
            meta = [[r[0], r[2], r[1], "PA"] for r in self.rows]
            put(self.root / "mimic-cxr-2.0.0-metadata.csv.gz",
                gzip.compress(csv_text(["dicom_id", "subject_id", "study_id", "ViewPosition"], meta).encode(), mtime=0))
        return len(self.rows)


def mimic_native(root: Path, n: int = 4) -> MimicNative:
    tree = MimicNative(root)
    for k in range(n):
        tree.study(k, "test" if k == n - 1 else "train")
    return tree


# ------------------------------------------------------------------------------------------------- Rad3D
def volume_npy(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    np.save(buf, rng.normal(100, 30, (24, 24, 4)).astype(np.float32), allow_pickle=False)
    return buf.getvalue()


@dataclass
class Rad3D:
    """Rad3D in RadFM's files: article JSON lists, VQA and modality CSVs, ``.npy`` volumes (one per case)."""

    root: Path
    articles: dict[str, list] = field(default_factory=lambda: {"train": [], "test": []})
    vqa: dict[str, list] = field(default_factory=lambda: {"train": [], "test": []})
    modality: dict[str, list] = field(default_factory=lambda: {"train": [], "test": []})

    def volume(self, n: int) -> str:
        rel = f"npy/{n}.npy"
        put(self.root / rel, volume_npy(n))
        return RAD3D_PREFIX + rel

    def case(self, n: int, split: str = "train") -> None:
        path = self.volume(n)
        self.articles[split].append({"npy_path": path, "finding": f"Finding {n}: a lesion.", "impression": "Lesion.",
                                     "title": f"Diagnosis {n}", "pat": "40 years old", "pre": "Headache.",
                                     "articles": [], "radiographic_features": []})
        self.vqa[split].append([path, f"What is shown in case {n}?", "A lesion."])
        self.modality[split].append([path, "CT" if n % 2 else "MRI"])

    def write(self, raw: dict[str, str | bytes] | None = None) -> int:
        """Write every file (``raw``: file name -> verbatim content replacing it); returns the data rows and
        entries written in files not replaced."""
        raw = raw or {}
        count = 0
        for split in ("train", "test"):
            files = {f"radiology_article_npy_{split}.json": (json.dumps(self.articles[split], indent=1), self.articles[split]),
                     f"radiology_vqa_{split}.csv": (csv_text(["image_path", "question", "answer"], self.vqa[split]),
                                                    self.vqa[split]),
                     f"radio_modality_{split}.csv": (csv_text(["image_path", "answer"], self.modality[split]),
                                                     self.modality[split])}
            for name, (text, rows) in files.items():
                put(self.root / "radfm" / name, raw.get(name, text))
                count += 0 if name in raw else len(rows)
        return count


def rad3d(root: Path, n_train: int = 2, n_test: int = 1) -> Rad3D:
    tree = Rad3D(root)
    return _filled(tree, tree.case, n_train, n_test)


# ------------------------------------------------------------------------------------------------- the cases
@dataclass(frozen=True)
class Outcome:
    """What the build must make of a case: exact sample count, rejects by reason, and ``rows``: the data rows
    and entries of the readable input files (each must be a sample or a reject: ``samples + row rejects == rows``,
    where a sample-producing row gives one sample in these trees)."""

    samples: int
    rejects: dict[str, int]
    rows: int
    file_rejects: int = 0  # whole files rejected (their rows are not counted in ``rows``)


@dataclass(frozen=True)
class Case:
    name: str
    dataset: str  # mimic | rad3d
    mode: str | None
    why: str  # the failure of issue #10 it reproduces
    write: Callable[[Path, Path], Outcome | str]  # (raw root of the dataset, a folder outside it) -> outcome or error
    request: dict = field(default_factory=dict)  # extra BuildRequest fields


CASES: list[Case] = []


def case(name: str, dataset: str, mode: str | None, why: str, **request: object):
    def register(fn: Callable[[Path, Path], Outcome | str]) -> Callable[[Path, Path], Outcome | str]:
        CASES.append(Case(name, dataset, mode, why, fn, dict(request)))
        return fn
    return register


@case("dicom_rows_smaller_than_pixels", "mimic", "radfm", "a DICOM whose Rows x Columns is smaller than its pixel data")
def _dicom_rows(raw: Path, outside: Path) -> Outcome:
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    tree = mimic_radfm(raw)
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.Rows, ds.Columns = 32, 32
    buf = io.BytesIO()
    ds.save_as(buf)
    tree.train.append([MIMIC_PREFIX + tree.image(20, buf.getvalue(), ".dcm"), LABEL])
    return Outcome(samples=6, rejects={"undecodable": 1}, rows=tree.write())


@case("report_is_a_directory", "mimic", "native", "a report path that is a directory")
def _report_dir(raw: Path, outside: Path) -> Outcome:
    tree = mimic_native(raw)
    folder = tree.study(10, report=None)
    (raw / f"{folder}.txt").mkdir(parents=True)
    return Outcome(samples=4, rejects={"bad_file": 1}, rows=tree.write())


@case("non_utf8_byte_in_csv", "mimic", "radfm", "one non-UTF-8 byte in a CSV")
def _non_utf8_csv(raw: Path, outside: Path) -> Outcome:
    tree = mimic_radfm(raw)
    rows = tree.write()
    path = raw / "radfm" / "mimic_caption_train.csv"
    path.write_bytes(path.read_bytes().replace(b"No acute process.", b"No acute process caf\xe9.", 1))
    return Outcome(samples=6, rejects={}, rows=rows)


@case("corrupt_csv_gz", "mimic", "native", "a corrupt .csv.gz (the only split file: nothing can be built)")
def _corrupt_gz(raw: Path, outside: Path) -> str:
    tree = mimic_native(raw)
    tree.write()
    path = raw / "mimic-cxr-2.0.0-split.csv.gz"
    data = path.read_bytes()
    path.write_bytes(data[:12] + bytes(b ^ 0x5A for b in data[12:-8]) + data[-8:])
    return "nothing to build: official split file: .*mimic-cxr-2.0.0-split.csv.gz: cannot read it"


@case("json_syntax_error", "rad3d", None, "a JSON file with a syntax error")
def _json_syntax(raw: Path, outside: Path) -> Outcome:
    tree = rad3d(raw)
    rows = tree.write({"radiology_article_npy_train.json": '[{"npy_path": "x", "finding": '})
    return Outcome(samples=rows, rejects={"bad_file": 1}, rows=rows, file_rejects=1)


@case("json_bad_encoding", "rad3d", None, "a JSON file in a wrong encoding (UTF-16)")
def _json_encoding(raw: Path, outside: Path) -> Outcome:
    tree = rad3d(raw)
    text = json.dumps(tree.articles["test"])
    rows = tree.write({"radiology_article_npy_test.json": text.encode("utf-16")})
    return Outcome(samples=rows, rejects={"bad_file": 1}, rows=rows, file_rejects=1)


@case("missing_column_in_split_file", "mimic", "native", "a missing column in the split file")
def _missing_column(raw: Path, outside: Path) -> str:
    tree = mimic_native(raw)
    tree.write(raw_text=csv_text(["dicom_id", "study_id", "subject_id"], [r[:3] for r in tree.rows]))
    return "nothing to build: official split file: .*missing column\\(s\\) split"


@case("missing_column_in_optional_metadata", "mimic", "native", "a missing column in the optional metadata file")
def _missing_optional_column(raw: Path, outside: Path) -> Outcome:
    tree = mimic_native(raw)
    rows = tree.write(metadata=False)
    put(raw / "mimic-cxr-2.0.0-metadata.csv.gz", gzip.compress(b"dicom_id,subject_id\nx,1\n", mtime=0))
    return Outcome(samples=4, rejects={"bad_file": 1}, rows=rows, file_rejects=1)


@case("dicom_id_with_dotdot", "mimic", "native", "a dicom_id with ../ segments reading a file outside the raw root")
def _dicom_id_dotdot(raw: Path, outside: Path) -> Outcome:
    tree = mimic_native(raw)
    put(outside / "secret.jpg", jpeg(image_pixels(99)))
    tree.study(11, dicom_id="../../../../../outside/secret")
    return Outcome(samples=4, rejects={"outside_root": 1}, rows=tree.write())


@case("radfm_path_with_dotdot", "mimic", "radfm", "a RadFM path with ../ segments")
def _radfm_dotdot(raw: Path, outside: Path) -> Outcome:
    tree = mimic_radfm(raw)
    put(outside / "secret.jpg", jpeg(image_pixels(99)))
    tree.train.append([MIMIC_PREFIX + "files/p10/../../../outside/secret.jpg", LABEL])
    return Outcome(samples=6, rejects={"outside_root": 1}, rows=tree.write())


@case("learned_prefix_then_dotdot", "mimic", "radfm", "a path remapped under a learned prefix followed by ../")
def _learned_dotdot(raw: Path, outside: Path) -> Outcome:
    tree = mimic_radfm(raw)  # its first row teaches the resolver the prefix
    put(outside / "secret.jpg", jpeg(image_pixels(99)))
    tree.test.append([MIMIC_PREFIX + "../outside/secret.jpg", LABEL])
    tree.test.append([MIMIC_PREFIX + "files/p10/../../../outside/secret.jpg", LABEL + " Again."])
    return Outcome(samples=6, rejects={"outside_root": 2}, rows=tree.write())


@case("symlink_outside", "mimic", "radfm", "a symbolic link pointing outside the raw root")
def _symlink(raw: Path, outside: Path) -> Outcome:
    tree = mimic_radfm(raw)
    secret = put(outside / "secret.jpg", jpeg(image_pixels(99)))
    link = raw / "files/p10/p10000030/s50000030/link.jpg"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    tree.train.append([MIMIC_PREFIX + "files/p10/p10000030/s50000030/link.jpg", LABEL])
    return Outcome(samples=6, rejects={"outside_root": 1}, rows=tree.write())


@case("symlink_outside_followed", "mimic", "radfm", "--follow-symlinks-outside reads a linked layout",
      follow_symlinks_outside=True)
def _symlink_followed(raw: Path, outside: Path) -> Outcome:
    outcome = _symlink(raw, outside)
    return Outcome(samples=7, rejects={}, rows=outcome.rows)


@case("control_characters_in_text", "mimic", "radfm", "NUL, BEL, ESC, DEL and C1 controls in the text")
def _controls(raw: Path, outside: Path) -> Outcome:
    tree = mimic_radfm(raw)
    tree.good(30, label="Findings: The lungs\x07 are \x1b[1mclear\x7f.\x85 Impression: normal.")
    rows = tree.write()
    path = raw / "radfm" / "mimic_caption_train.csv"
    path.write_bytes(path.read_bytes().replace(b"lungs\x07", b"lungs\x00\x07"))
    return Outcome(samples=7, rejects={}, rows=rows)


@case("binary_text", "mimic", "radfm", "a label that is binary data (control characters above the threshold)")
def _binary(raw: Path, outside: Path) -> Outcome:
    tree = mimic_radfm(raw)
    tree.good(31, label="Findings: " + "\x01\x02\x03\x04\x05\x06" * 10)
    return Outcome(samples=6, rejects={"bad_text": 1}, rows=tree.write())


@case("non_utf8_report", "mimic", "native", "a report in Windows-1252, not UTF-8")
def _non_utf8_report(raw: Path, outside: Path) -> Outcome:
    tree = mimic_native(raw)
    tree.study(12, report=REPORT.replace("The lungs are clear.", "Épanchement “minime”.").encode("cp1252"))
    return Outcome(samples=5, rejects={}, rows=tree.write())


@case("broken_quote_in_split_file", "mimic", "native", "a broken quote swallowing the following rows (split file)")
def _quote_split(raw: Path, outside: Path) -> Outcome:
    tree = mimic_native(raw)
    for k in (13, 14, 15):
        tree.study(k)
    lines = csv_text(["dicom_id", "study_id", "subject_id", "split"], tree.rows).splitlines()
    lines[2] = lines[2].replace(",50000001,", ',"50000001,')  # an unterminated quote in the second data row
    tree.write(raw_text="\n".join(lines) + "\n")
    return Outcome(samples=6, rejects={"bad_row": 1}, rows=7)


@case("broken_quote_in_vqa_csv", "rad3d", None, "a broken quote merging two rows into one question (VQA CSV)")
def _quote_vqa(raw: Path, outside: Path) -> Outcome:
    tree = rad3d(raw, n_train=3)
    path = tree.vqa["train"][1][0]
    good = csv_text(["image_path", "question", "answer"], tree.vqa["train"]).splitlines()
    good.insert(2, f'{path},"What is the broken,quote')
    text = "\n".join(good) + "\n"
    rows = tree.write({"radiology_vqa_train.csv": text}) + 4
    return Outcome(samples=rows - 1, rejects={"bad_row": 1}, rows=rows)


@case("article_with_only_a_title", "rad3d", None, "a Rad3D entry with only a title (no sample and no reject before)")
def _title_only(raw: Path, outside: Path) -> Outcome:
    tree = rad3d(raw)
    tree.articles["train"].append({"npy_path": tree.volume(7), "finding": "", "impression": "", "title": "Only a title"})
    rows = tree.write()
    return Outcome(samples=rows - 1, rejects={"bad_row": 1}, rows=rows)


@case("article_json_is_an_object", "rad3d", None, "an article JSON that is an object instead of a list")
def _json_object(raw: Path, outside: Path) -> Outcome:
    tree = rad3d(raw)
    rows = tree.write({"radiology_article_npy_train.json": json.dumps({"0": tree.articles["train"][0]})})
    return Outcome(samples=rows, rejects={"bad_file": 1}, rows=rows, file_rejects=1)


@case("unknown_split_name", "mimic", "native", "a split value that is not a split (and would be a path)")
def _bad_split(raw: Path, outside: Path) -> Outcome:
    tree = mimic_native(raw)
    tree.study(16, split="../../../escape")
    return Outcome(samples=4, rejects={"bad_row": 1}, rows=tree.write())


@case("colour_and_exif", "mimic", "radfm", "colour discarded; EXIF orientation ignored")
def _colour(raw: Path, outside: Path) -> Outcome:
    tree = mimic_radfm(raw)
    tree.train.append([MIMIC_PREFIX + tree.image(40, jpeg(image_pixels(40, colour=True))), LABEL + " Colour."])
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees counter-clockwise; a viewer turns it back
    sideways = np.ascontiguousarray(np.rot90(image_pixels(41, size=(48, 48)), 1))
    tree.train.append([MIMIC_PREFIX + tree.image(41, jpeg(sideways, exif=exif)), LABEL + " Sideways."])
    tree.train.append([MIMIC_PREFIX + tree.image(42, jpeg(image_pixels(41, size=(48, 48)))), LABEL + " Upright."])
    return Outcome(samples=9, rejects={}, rows=tree.write())


@case("report_shapes", "mimic", "native", "FINDINGS AND IMPRESSION rejected; an upper-case sub-heading emptied FINDINGS")
def _report_shapes(raw: Path, outside: Path) -> Outcome:
    tree = mimic_native(raw)
    tree.study(17, report="                FINAL REPORT\n FINDINGS AND IMPRESSION:  No pneumothorax.\n")
    tree.study(18, report=" FINDINGS:\n \n LUNGS:  Clear.\n \n HEART:  Normal size.\n \n IMPRESSION:  Normal.\n")
    return Outcome(samples=6, rejects={}, rows=tree.write())


@case("non_utf8_file_name", "mimic", "radfm", "an image whose file name is not UTF-8")
def _non_utf8_name(raw: Path, outside: Path) -> Outcome:
    tree = mimic_radfm(raw)
    folder = raw / "files/p10/p10000050/s50000050"
    folder.mkdir(parents=True)
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.jpg"), "wb") as fh:
        fh.write(jpeg(image_pixels(50)))
    rows = tree.write()
    with open(raw / "radfm" / "mimic_caption_train.csv", "ab") as fh:
        fh.write(f"{MIMIC_PREFIX}files/p10/p10000050/s50000050/caf".encode() + b"\xe9.jpg," + LABEL.encode() + b"\n")
    return Outcome(samples=7, rejects={}, rows=rows + 1)


@case("empty_raw_dir", "mimic", "radfm", "an empty raw directory")
def _empty(raw: Path, outside: Path) -> str:
    raw.mkdir(parents=True, exist_ok=True)
    return "is empty"


@case("radfm_csvs_missing", "mimic", "radfm", "--mode radfm without RadFM's CSVs")
def _no_csvs(raw: Path, outside: Path) -> str:
    mimic_native(raw).write()
    return ("nothing to build: RadFM split file .*mimic_caption_train.csv not found; RadFM split file "
            ".*mimic_caption_test.csv not found; pass --radfm-dir DIR .* or build from the dataset's own files "
            "with --mode native")


def write_case(c: Case, root: Path) -> Outcome | str:
    """Write case ``c`` under ``root`` (``root/<dataset>`` is its raw root, ``root/outside`` a folder beside it)."""
    raw, outside = root / c.dataset, root / "outside"
    outside.mkdir(parents=True, exist_ok=True)
    return c.write(raw, outside)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    out = Path(argv[0])
    for c in CASES:
        target = out / c.name
        shutil.rmtree(target, ignore_errors=True)
        outcome = write_case(c, target)
        print(f"{c.name:40s} {c.dataset:6s} {c.mode or 'default':7s} {c.why}\n{'':40s} expect: {outcome}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
