"""Which S3 client reads shards best: index-driven byte-range reads on the local S3 server (``tools.s3_local``).

    python bench/remote.py [--samples 400] [--sample-kib 256] [--threads 4] [--passes 5]
        [--s3fs-python /path/to/venv/bin/python] [--no-docs]

The work, the same for every client: ``--samples`` sample spans of about ``--sample-kib`` KiB (sizes vary +-50 %,
seeded) laid end to end in 4 shard objects, as the index sidecars describe them; each pass reads every span once,
in a seeded shuffled order, with one ranged GET per span, from ``--threads`` threads (a loader's worker
threads); every span read is checked against the bytes that were uploaded. Each client runs in its own process
(sides take turns pass by pass, in one run, against one server); the figure is the median pass.

Clients: pyarrow's ``S3FileSystem`` (``open_input_file`` once per shard, then ``read_at``), obstore
(``get_range``), boto3 (``get_object`` with ``Range``) and s3fs (``cat_file`` with start/end). s3fs needs
aiobotocore, which pins a botocore older than this project's, so it runs from another interpreter
(``--s3fs-python``, a throwaway venv with ``pip install s3fs``) or is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUCKET = "bench"
SHARDS = 4
CLIENTS = ("pyarrow", "obstore", "boto3", "s3fs")


def layout(samples: int, kib: int, seed: int) -> list[tuple[str, int, int]]:
    """``(key, offset, size)`` per sample span, spread over ``SHARDS`` objects."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = rng.integers(kib * 512, kib * 1536, size=samples)
    spans, offsets = [], [512] * SHARDS  # a tar header before the first member
    for i, size in enumerate(sizes):
        shard = i % SHARDS
        spans.append((f"shards/s{shard}.tar", offsets[shard], int(size)))
        offsets[shard] += int(size) + 512
    return spans


def payload(key: str, total: int) -> bytes:
    import numpy as np

    return np.random.default_rng(abs(hash(key)) % 2**32).integers(0, 256, total, dtype=np.uint8).tobytes()


# ------------------------------------------------------------------------------------------------ one side
def reader(client: str, endpoint: str):
    """``read(key, offset, size) -> bytes`` for one client."""
    if client == "pyarrow":
        import threading

        import pyarrow.fs as pafs

        fs = pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", region="us-east-1",
                               access_key="testing", secret_key="testing")
        handles, lock = {}, threading.Lock()

        def read(key, offset, size):
            with lock:
                fh = handles.get(key)
                if fh is None:
                    fh = handles[key] = fs.open_input_file(f"{BUCKET}/{key}")
            return fh.read_at(size, offset)
        return read
    if client == "obstore":
        from obstore.store import S3Store

        store = S3Store(BUCKET, endpoint=endpoint, region="us-east-1", access_key_id="testing",
                        secret_access_key="testing", client_options={"allow_http": True})
        import obstore

        return lambda key, offset, size: bytes(obstore.get_range(store, key, start=offset, length=size))
    if client == "boto3":
        import boto3
        from botocore.config import Config

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing", config=Config(max_pool_connections=32))
        return lambda key, offset, size: s3.get_object(Bucket=BUCKET, Key=key,
                                                       Range=f"bytes={offset}-{offset + size - 1}")["Body"].read()
    if client == "s3fs":
        import s3fs

        fs = s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": endpoint,
                                                                              "region_name": "us-east-1"})
        return lambda key, offset, size: fs.cat_file(f"{BUCKET}/{key}", start=offset, end=offset + size)
    raise ValueError(client)


def side(args) -> None:
    """Child process: read every span ``--passes`` times when told to (one line on stdin per pass), print seconds."""
    import hashlib

    import numpy as np

    spans = layout(args.samples, args.sample_kib, args.seed)
    expect = json.loads(Path(args.digests).read_text())
    read = reader(args.side, args.endpoint)
    read(*spans[0])  # connect, open
    order = np.random.default_rng(args.seed).permutation(len(spans))

    def one(i):
        key, offset, size = spans[i]
        data = read(key, offset, size)
        if hashlib.blake2b(data, digest_size=8).hexdigest() != expect[i]:
            raise SystemExit(f"{args.side}: span {i} read wrong bytes")
        return len(data)

    with ThreadPoolExecutor(args.threads) as pool:
        for line in sys.stdin:
            if line.strip() != "go":
                break
            t0 = time.perf_counter()
            total = sum(pool.map(one, order))
            print(json.dumps({"s": time.perf_counter() - t0, "bytes": total}), flush=True)


# ------------------------------------------------------------------------------------------------ the run
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=400)
    p.add_argument("--sample-kib", type=int, default=256)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--passes", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--s3fs-python", help="an interpreter with s3fs installed (left out if not given)")
    p.add_argument("--no-docs", action="store_true")
    p.add_argument("--side", help=argparse.SUPPRESS)
    p.add_argument("--endpoint", help=argparse.SUPPRESS)
    p.add_argument("--digests", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.side:
        return side(args)

    import hashlib
    import tempfile

    from tools.s3_local import LocalS3

    spans = layout(args.samples, args.sample_kib, args.seed)
    ends: dict[str, int] = {}
    for key, offset, size in spans:
        ends[key] = max(ends.get(key, 0), offset + size + 1024)
    with LocalS3() as s3, tempfile.TemporaryDirectory() as tmp:
        s3.create_bucket(BUCKET)
        client = s3.client()
        blobs = {key: payload(key, end) for key, end in ends.items()}
        for key, blob in blobs.items():
            client.put_object(Bucket=BUCKET, Key=key, Body=blob)
        digests = [hashlib.blake2b(blobs[k][o:o + n], digest_size=8).hexdigest() for k, o, n in spans]
        Path(tmp, "d.json").write_text(json.dumps(digests))
        sides = {}
        for name in CLIENTS:
            python = args.s3fs_python if name == "s3fs" else sys.executable
            if not python:
                continue
            cmd = [python, __file__, "--side", name, "--endpoint", s3.endpoint, "--digests", str(Path(tmp, "d.json")),
                   "--samples", str(args.samples), "--sample-kib", str(args.sample_kib), "--threads", str(args.threads),
                   "--seed", str(args.seed)]
            sides[name] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        times: dict[str, list[float]] = {n: [] for n in sides}
        total = sum(n for _, _, n in spans)
        for _ in range(args.passes + 1):  # the first pass warms the server and the client
            for name, proc in sides.items():
                proc.stdin.write("go\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
                if not line:
                    raise SystemExit(f"{name}: side failed (exit {proc.wait()})")
                times[name].append(json.loads(line)["s"])
        for proc in sides.values():
            proc.stdin.close()
            proc.wait()
    rows = []
    base = statistics.median(times["pyarrow"][1:])
    for name, ts in times.items():
        med = statistics.median(ts[1:])
        rows.append([name, f"{med:.3f}", f"{len(spans) / med:,.0f}", f"{total / med / 2**20:,.0f}", f"{med / base:.2f}"])
    from bench.report import machine, table, write_section

    text = table(["client", "median pass (s)", "range reads/s", "MiB/s", "time vs pyarrow"], rows)
    medians = {name: statistics.median(ts[1:]) for name, ts in times.items()}
    best = min(medians, key=medians.get)
    text += (f"\n\nFastest: {best} ({', '.join(f'{medians[n] / medians[best]:.2f}x its time for {n}' for n in medians if n != best)}). "
             "shards_spec.storage uses obstore.")
    body = (f"`python bench/remote.py --samples {args.samples} --sample-kib {args.sample_kib} --threads {args.threads} "
            f"--passes {args.passes}{' --s3fs-python …' if args.s3fs_python else ''}` on {machine()}.\n\n"
            f"{len(spans)} sample spans ({total / 2**20:.0f} MiB) read once per pass, one ranged GET each, from "
            f"{args.threads} threads, against moto's S3 server on 127.0.0.1 (tools/s3_local.py); median of "
            f"{args.passes} passes, clients taking turns, each in its own process. The server (Python) is the same "
            "for every client, so the ratios compare the clients' per-request cost, not S3's bandwidth.\n\n" + text)
    print(body)
    if not args.no_docs:
        write_section("Object storage: S3 client for index-driven range reads", body)


if __name__ == "__main__":
    main()
