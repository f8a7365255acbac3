"""Streaming DeepSpeed trainer for RadFM-style models on WebDataset shards (spec 1.0).

``deepspeed train/run.py --config train/configs/demo-cpu.yaml`` (also ``deepspeed --module train.run``,
``torchrun -m train.run`` or plain ``python -m train.run``).

Modules, in the order the trainer uses them:

``train.config``      ``TrainConfig`` dataclass, YAML loading, ``--set key=value`` overrides
``train.sources``     config ``sources`` entries (dataset dirs, manifests, brace URL patterns) -> shard lists
``train.schedule``    the stateless, seed-derived 2D/3D step schedule shared by all ranks
``train.stream``      one endless, exactly resumable stream per modality (dealing, interleave, block shuffle)
``train.collate``     RadFM's batch size rules, dynamic token padding, train-time augmentation
``train.logs``        per-step JSON lines, loss-curve PNG
``train.checkpoint``  trainer state next to DeepSpeed's checkpoints (step, stream positions, RNG states)
``train.run``         the training loop
"""
