"""Evaluation and inference for RadFM-style models: test-split generation, RadFM's output CSV, per-task metrics.

Commands (thin entry points in ``train/`` so that they sit next to training)::

    python -m train.evaluate --checkpoint runs/demo-cpu/final --shards data/shards --out runs/eval
    python -m evaluation.score runs/eval                    # rescore saved predictions (no generation)
    python -m train.generate --checkpoint runs/demo-cpu/final --image chest.dcm --question "Any effusion?"

Modules, in the order an evaluation uses them:

``evaluation.data``         shards -> planned samples (index sidecars), per-sample test geometry, batches, rank
                            dealing, reading one sample by its index entry
``evaluation.loading``      checkpoint -> model (``from_pretrained`` or RadFM's ``pytorch_model.bin``), its tokenizer
``evaluation.generation``   batched left-padded generation (greedy by default), held-out teacher-forced loss
``evaluation.run``          the loop over a rank's batches -> prediction records
``evaluation.predictions``  per-rank part files (atomic per batch, resumable), predictions.jsonl / RadFM's CSV
``evaluation.tasks``        the registry task -> evaluation kind -> metrics (sources extend it by one line)
``evaluation.normalize``    answer normalisation (yes/no, modality aliases, SQuAD-style text, findings)
``evaluation.metrics``      one module per metric behind ``Metric`` (reset / update / compute), ``METRICS``
``evaluation.score``        predictions -> metrics.json and the printed table (also a CLI)
``evaluation.report``       report.md with examples and thumbnails
``evaluation.cli``          ``python -m train.evaluate``
``evaluation.during_training``  the trainer's periodic evaluation (``eval_every``, ``eval_shards``)
``evaluation.generate``     ``python -m train.generate``: one question about your own image files

The package is called ``evaluation`` (not ``evaluate``) so that it never shadows Hugging Face's ``evaluate``
distribution when the project is installed. It reads shards through ``shards_spec`` and models through
``model``; from ``train`` it uses only the shard-source resolution and tokenizer check (``train.sources``) and the
test-time image geometry (``train.collate``), so evaluation sees images exactly as the trainer prepares them.
"""
