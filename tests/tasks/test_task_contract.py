"""The task contract over every registered task (pipelines.tasks.base): registered under the name it writes,
pure and seeded, images kept in order and capped, one placement per kept image, prompts from its own files; and
every sample the registered sources build from the demo keeps it too."""

from __future__ import annotations

import random
from dataclasses import FrozenInstanceError

import pytest
from task_helpers import record

from pipelines import tasks
from pipelines.build import make_context, plan_jobs
from pipelines.records import SampleSpec
from pipelines.sources import REGISTRY, get_source
from pipelines.tasks import TASKS
from pipelines.tasks.common import prompt_kinds, prompts


def check_spec(spec: SampleSpec, n_images: int, max_images: int, task: tasks.Task) -> None:
    assert spec.task == task.name
    assert list(spec.image_indices) == sorted(set(spec.image_indices))
    assert all(0 <= i < n_images for i in spec.image_indices) and len(spec.image_indices) == min(n_images, max_images)
    assert len(spec.placements) == len(spec.image_indices)
    for p in spec.placements:
        text = spec.question if p.where == "question" else spec.answer
        assert 0 <= p.char <= len(text)
    if spec.prompt_id is not None:
        kind, _, number = spec.prompt_id.rpartition("/")
        assert kind in task.prompt_kinds and int(number) < len(prompts(kind))
    assert spec.answer.strip() and spec.variant


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_contract(name):
    task = TASKS[name]
    assert task.inputs.task == name
    inputs = task.inputs.example()
    with pytest.raises(FrozenInstanceError):
        inputs.task_field_that_does_not_exist = 1  # inputs are frozen
    assert set(task.prompt_kinds) <= set(prompt_kinds())
    for n_images in (1, 3, 14):
        rec = record(n_images, source_id=f"case-{n_images}")
        specs = [tasks.sample(seed, rec, inputs, max_images=10) for seed in range(40)]
        for spec in specs:
            check_spec(spec, n_images, 10, task)
        assert specs[0] == tasks.sample(0, rec, inputs, max_images=10)  # pure: same seed, same sample
        if task.random_choices or n_images > 10:  # seeded choices (at least the image subset)
            assert len({(s.question, s.variant, s.placements, s.image_indices) for s in specs}) > 1
    rng_a, rng_b = tasks.task_rng(0, record(), name), random.Random(0)
    assert rng_a.random() != rng_b.random()


def test_inputs_of_another_task_are_refused():
    class Impostor(tasks.VqaInputs):
        task = "report"

    with pytest.raises(TypeError, match="takes ReportInputs"):
        tasks.sample(0, record(), Impostor("q", "a"), max_images=10)
    with pytest.raises(KeyError, match="unknown task"):
        tasks.get_task("no_such_task")
    with pytest.raises(ValueError, match="prompt_kind"):
        tasks.ReportInputs("x", prompt_kind="no_such_prompts")
    with pytest.raises(ValueError, match="position"):
        tasks.ReportInputs("x", position="middle")


@pytest.mark.parametrize("dataset", sorted(REGISTRY))
def test_every_demo_sample_keeps_the_contract(demo_raw, dataset):
    source = get_source(dataset)
    raw = demo_raw / dataset
    for mode in source.modes:
        ctx = make_context(source, raw, mode)
        jobs, _ = plan_jobs(source, ctx, None)
        assert jobs or not source.modes or mode == "store"
        for job in jobs:
            assert job.spec.task in TASKS
            check_spec(job.spec, len(job.record.images), ctx.image.max_images, TASKS[job.spec.task])
