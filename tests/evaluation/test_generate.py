"""python -m train.generate: one question about a DICOM file, a NIfTI volume or several images, through the build's
readers; RadFM's released checkpoint format loads through the official loader."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.generate import load_inputs, main, placements
from pipelines.config import ImageConfig
from pipelines.records import ImagePlacement

FAST = ["--image-size", "64", "--max-new-tokens", "3"]


@pytest.fixture(scope="module")
def dicom_path():
    from pydicom.data import get_testdata_file

    return get_testdata_file("CT_small.dcm")  # a real single-frame CT slice (pydicom's own test data)


@pytest.fixture(scope="module")
def nifti_path(tmp_path_factory):
    import nibabel as nib

    rng = np.random.default_rng(0)
    volume = rng.normal(100, 20, (40, 36, 11)).astype(np.float32)
    path = tmp_path_factory.mktemp("nifti") / "head.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.diag([1.0, 1.0, 3.0, 1.0])), path)
    return path


def test_inputs_are_loaded_as_the_build_loads_them(dicom_path, nifti_path):
    cfg = ImageConfig()
    vision, stream = load_inputs([dicom_path], cfg)
    assert stream == "2d" and vision.shape == (1, 1, 512, 512, 1) and vision.dtype == np.uint8
    vision, stream = load_inputs([nifti_path], cfg)
    assert stream == "3d" and vision.shape == (1, 1, 512, 512, 12)  # 11 slices -> RadFM's closest depth, 12
    vision, stream = load_inputs([nifti_path, dicom_path], cfg)  # a 2D image next to a volume: replicated
    assert stream == "3d" and vision.shape == (2, 1, 512, 512, 12)
    assert (vision[1, ..., 0] == vision[1, ..., 11]).all()


def test_png_jpeg_and_a_folder_of_slices_are_loaded_as_the_build_loads_them(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (40, 30), dtype=np.uint8)
    colour = np.stack([grey, grey // 2, 255 - grey], axis=-1)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(colour).save(tmp_path / "colour.png")
    Image.fromarray(grey).save(tmp_path / "grey.jpg", quality=95)
    folder = tmp_path / "slices"
    folder.mkdir()
    for i in range(10):  # 10, 2, 3 ... sort naturally (0, 1, 2 ... 10), as the build sorts them
        Image.fromarray(np.roll(grey, i, axis=0)).save(folder / f"{i}.jpg", quality=95)
    cfg = ImageConfig()
    vision, stream = load_inputs([tmp_path / "grey.png"], cfg)
    assert stream == "2d" and vision.shape == (1, 1, 512, 512, 1)
    vision, stream = load_inputs([tmp_path / "colour.png"], cfg)  # --channels auto (the build's default): colour
    assert stream == "2d" and vision.shape == (1, 3, 512, 512, 1)
    assert load_inputs([tmp_path / "colour.png"], cfg, channels="grey")[0].shape == (1, 1, 512, 512, 1)
    vision, stream = load_inputs([tmp_path / "grey.jpg", tmp_path / "grey.png"], cfg)
    assert stream == "2d" and vision.shape == (2, 1, 512, 512, 1)
    vision, stream = load_inputs([folder], cfg)
    assert stream == "3d" and vision.shape == (1, 1, 512, 512, 8)  # 10 slices -> RadFM's closest depth, 8


def test_positions():
    q = "Any effusion?"
    assert placements(q, [], 2) == [ImagePlacement("question", len(q))] * 2
    assert placements(q, ["start", "end"], 3) == [ImagePlacement("question", 0), ImagePlacement("question", len(q)),
                                                 ImagePlacement("question", len(q))]
    assert placements(q, ["4"], 1) == [ImagePlacement("question", 4)]
    with pytest.raises(ValueError, match="--position"):
        placements(q, ["middle"], 1)


def test_one_question_about_a_dicom_file(tiny_model, dicom_path, capsys):
    assert main(["--checkpoint", str(tiny_model), "--image", str(dicom_path), "--question", "Is there an effusion?",
                 *FAST]) == 0
    out = capsys.readouterr()
    assert "Question: Is there an effusion<IMG 0>?" in out.out and "\nAnswer: " in out.out
    assert "(2d)" in out.err and "on cpu" in out.err


def test_one_question_about_a_nifti_volume_and_a_second_image(tiny_model, dicom_path, nifti_path, capsys):
    assert main(["--checkpoint", str(tiny_model), "--image", str(nifti_path), "--image", str(dicom_path),
                 "--question", "What changed?", "--position", "start", "--position", "end", *FAST]) == 0
    out = capsys.readouterr()
    assert "Question: <IMG 0>What changed<IMG 1>?" in out.out and "(3d)" in out.err


def test_radfms_released_format_loads_and_asks_for_its_tokenizer(tmp_path, dicom_path, capsys):
    import torch

    from model import RadFMForCausalLM, get_config

    torch.save(RadFMForCausalLM(get_config("tiny")).state_dict(), tmp_path / "pytorch_model.bin")
    argv = ["--checkpoint", str(tmp_path / "pytorch_model.bin"), "--model", "tiny", "--image", str(dicom_path),
            "--question", "Any effusion?", *FAST]
    assert main(argv) == 2  # the official loader records RadFM's tokenizer, which no test may read
    assert "pass --tokenizer DIR" in capsys.readouterr().err
    assert main([*argv, "--tokenizer", "default"]) == 2  # another tokenizer would decode other pieces
    assert "is not the model's" in capsys.readouterr().err


def test_a_missing_image_is_one_line(tiny_model, tmp_path, capsys):
    assert main(["--checkpoint", str(tiny_model), "--image", str(tmp_path / "none.dcm"), "--question", "Q?"]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_a_training_output_dir_loads_its_final_model_not_its_training_config(tiny_model, tmp_path):
    import json
    import shutil

    from evaluation.loading import CheckpointError, checkpoint_config, load_model

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "tiny", "steps": 30}))  # what the trainer writes there
    with pytest.raises(CheckpointError, match="final/"):
        checkpoint_config(run)
    shutil.copytree(tiny_model, run / "final")
    assert checkpoint_config(run) == checkpoint_config(tiny_model)
    assert load_model(run).config == load_model(tiny_model).config
