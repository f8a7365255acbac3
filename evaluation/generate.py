"""``python -m train.generate``: ask a model one question about your own image files (RadFM's quick demo).

    python -m train.generate --checkpoint runs/demo-cpu/final --image chest.jpg --question "Is there an effusion?"
    python -m train.generate --checkpoint pytorch_model.bin --tokenizer Language_files \\
        --image view1_frontal.jpg --question "Can you identify any visible signs of Cardiomegaly in the image?"
    python -m train.generate --checkpoint ... --image ct.nii.gz --image prior.nii.gz \\
        --question "What changed between these scans?" --position start --position end

Images go through the build's readers (``pipelines.imaging``; the format is recognised by content): JPEG, PNG and
other Pillow formats, DICOM (a single frame is a 2D image; a multi-frame file a volume), NIfTI, ``.npy``, and
folders (a DICOM series or a folder of JPEG/PNG slices: a volume). They are stored as the build stores them
(``pipelines.imaging.stack_sample``: uint8, 512x512, one depth per sample) and prepared as the evaluation prepares
them (``evaluation.data.sample_vision``: the trainer's test-time geometry, no random crop).

The prompt is the build's token layout (``pipelines.text.encode``) of the question with image ``i`` placed by
``--position`` (one per image; the last repeats): ``end`` (RadFM's ``len(question)``: before the question's last
character, as RadFM's 2D datasets), ``start`` (before the first character) or a number ``p`` (before character
``max(p-1, 0)``). RadFM's Quick_demo put its image at the start. Decoding as ``train.evaluate`` (greedy, stop at
EOS 2, ``--max-new-tokens`` 200). Runs on the GPU when there is one, else on the CPU.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.data import eval_collate_config
from evaluation.generation import add_generation_arguments, generate_batch, generation_config
from evaluation.loading import CheckpointError, load_model, load_tokenizer_for, pick_device, pick_dtype
from evaluation.predictions import compact_text
from pipelines.config import ImageConfig, TextConfig
from pipelines.imaging import ImageError, load_images, sniff, stack_sample
from pipelines.imaging.intensity import CHANNELS
from pipelines.records import ImagePlacement, ImageRef
from pipelines.text import encode
from shards_spec.tokenizer import Tokenizer, TokenizerError
from train.collate import CollateConfig

VOLUME_FORMATS = ("nifti", "npy")


@dataclass
class Prompt:
    key: str
    prompt_ids: np.ndarray  # BOS + question with image spans
    vision: np.ndarray  # uint8 [S, C, H, W, D]
    question_compact: str


def image_ref(path: Path) -> ImageRef:
    """How the build would load ``path``: a folder or a NIfTI/``.npy``/multi-frame DICOM file is a volume, anything
    else a 2D image."""
    if path.is_dir():
        return ImageRef(str(path), "volume")
    if not path.is_file():
        raise FileNotFoundError(f"--image {path}: no such file or folder")
    fmt = sniff(path)
    if fmt in VOLUME_FORMATS:
        return ImageRef(str(path), "volume")
    if fmt == "dicom":
        import pydicom

        header = pydicom.dcmread(path, stop_before_pixels=True)
        frames = int(getattr(header, "NumberOfFrames", 1) or 1)
        return ImageRef(str(path), "volume" if frames > 1 else "image2d")
    return ImageRef(str(path), "image2d")


def load_inputs(paths: list[Path], cfg: ImageConfig, channels: str = "auto") -> tuple[np.ndarray, str]:
    """uint8 ``[S, C, H, W, D]`` of the images and the stream (``2d`` when every image has depth 1)."""
    refs = [image_ref(Path(p).resolve()) for p in paths]
    stream = "2d" if all(r.load_as == "image2d" for r in refs) else "3d"
    arrays = load_images(Path("/"), refs, cfg, stream, channels)
    if stream == "3d" and all(a.shape[-1] == 1 for a in arrays):
        stream = "2d"  # e.g. a single-slice NIfTI: a 2D image after all
    return stack_sample(arrays, cfg, stream), stream


def placements(question: str, positions: list[str], n_images: int) -> list[ImagePlacement]:
    out = []
    for i in range(n_images):
        spec = positions[min(i, len(positions) - 1)] if positions else "end"
        if spec == "end":
            char = len(question)
        elif spec == "start":
            char = 0
        elif spec.lstrip("-").isdigit():
            char = int(spec)
        else:
            raise ValueError(f"--position {spec!r}: use end, start or a character offset")
        out.append(ImagePlacement("question", char))
    return out


def build_prompt(tok: Tokenizer, question: str, places: list[ImagePlacement], vision: np.ndarray) -> Prompt:
    """The question's tokens as the build lays them out: BOS + question with image spans (RadFM's
    ``question_length`` tokens)."""
    enc = encode(tok, question, "", places, [], TextConfig())
    return Prompt("generate", enc.input_ids[: enc.n_question_tokens], vision, compact_text(question, places, "question"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.generate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="a save_pretrained folder, a training output_dir, or RadFM's pytorch_model.bin")
    p.add_argument("--image", action="append", required=True, metavar="FILE",
                   help="an image file or slice folder (repeatable; image i is the i-th)")
    p.add_argument("--question", required=True)
    p.add_argument("--position", action="append", default=[], metavar="end|start|N",
                   help="where each image goes in the question (repeatable, one per image; default end)")
    p.add_argument("--model", default="radfm-13b", help="preset sizes for RadFM's pytorch_model.bin")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the one the model records)")
    p.add_argument("--channels", default="auto", choices=CHANNELS, help="as the build's --channels (auto: colour kept "
                   "where the planes differ, else grey)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--image-size", type=int, default=None, help="force H = W (default: the trainer's rules)")
    add_generation_arguments(p)
    return p


def run(args: argparse.Namespace) -> str:
    device = pick_device(args.device)
    gen = generation_config(args)
    vision, stream = load_inputs([Path(p) for p in args.image], ImageConfig(), args.channels)
    places = placements(args.question, args.position, vision.shape[0])
    model = load_model(args.checkpoint, args.model, device, pick_dtype(args.dtype, device))
    tok = load_tokenizer_for(model.config, args.tokenizer)
    prompt = build_prompt(tok, args.question, places, vision)
    collate_cfg = eval_collate_config(CollateConfig(image_size=args.image_size))
    out = generate_batch(model, [prompt], collate_cfg, gen, device)[0]
    answer = tok.decode(out.ids, skip_special_tokens=True).strip()
    print(f"[generate] {len(args.image)} image(s) {tuple(vision.shape)} ({stream}), {len(prompt.prompt_ids)} prompt "
          f"tokens, {len(out.ids)} new ({out.stopped}) on {device}", file=sys.stderr, flush=True)
    print(f"Question: {prompt.question_compact}")
    print(f"Answer: {answer}")
    return answer


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        generation_config(args)
    except ValueError as exc:
        p.error(str(exc))
    try:
        run(args)
    except (FileNotFoundError, ImageError, CheckpointError, TokenizerError) as exc:
        print(f"[generate] error: {exc}", file=sys.stderr, flush=True)
        return 2
    except ValueError as exc:  # a bad --position
        if "--position" not in str(exc):
            raise
        print(f"[generate] error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
