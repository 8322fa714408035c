"""Images/s of ``predict --ray`` (Ray Data, 1 and 2 actors) against the plain ``predict_files``, side by side.

    python benchmarks/batch_predict.py ARTIFACT [--images 500] [--splits val,train] [--threads N] [--batch 8]
                                       [--json results/batch-predict.json]

Frames: the first N images of the CamVid splits named (``../shared/data/camvid``, read in place; a split that
is not there is skipped and the JSON records how many frames were found). All runs are in this process, one
after another, each writing into a fresh temporary folder: the plain run's time includes loading its Segmenter;
each Ray run's includes starting its actors and loading the model in each (as a user's run does), but not
starting Ray, which happens once before them. Every run's outputs are compared with the plain run's bytes.
``measure_batch`` is what other benchmark scripts import.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from segdeploy.bench.machine import machine_info
from segdeploy.data.datasets import IMAGE_SUFFIXES
from segdeploy.fileio import write_json
from segdeploy.runtime.predict import predict_files
from segdeploy.runtime.segmenter import Segmenter
from segdeploy.serve.batch import RayPredictConfig, predict_files_ray
from segdeploy.serve.cluster import ray_session, require_ray

HERE = Path(__file__).resolve().parent


def measure_batch(artifact: str | Path, images: Sequence[Path], concurrencies: Sequence[int] = (1, 2),
                  batch: int = 8, threads: int | None = None) -> dict:
    """Plain ``predict_files`` and ``predict_files_ray`` with each actor count in ``concurrencies`` on ``images``:
    {"artifact", "images", "batch", "threads", "runs": [{"mode", "actors", "seconds", "images_per_second",
    "identical"} (Ray runs also "after_first_batch_images_per_second", the rate once actors run)]},
    ``identical`` saying whether a Ray run wrote the plain run's bytes. Uses this process's Ray where it runs
    one, else starts a local instance for the Ray runs."""
    images = [Path(image) for image in images]
    with tempfile.TemporaryDirectory(prefix="batch-predict-") as work:
        plain_out = Path(work) / "plain"
        started = time.perf_counter()
        with Segmenter(artifact, threads=threads) as segmenter:
            predict_files(segmenter, images, plain_out)
        runs = [_row("plain", 1, time.perf_counter() - started, len(images), True)]
        with _ray_running():
            for actors in concurrencies:
                out = Path(work) / f"ray-{actors}"
                report, steady = _ray_run(artifact, images, out, RayPredictConfig(concurrency=actors, batch=batch,
                                                                                     threads=threads))
                runs.append(_row("ray", actors, report.seconds, report.images, _same_files(plain_out, out))
                            | {"after_first_batch_images_per_second": steady})
    return {"artifact": str(artifact), "images": len(images), "batch": batch, "threads": threads, "runs": runs}


def _row(mode: str, actors: int, seconds: float, images: int, identical: bool) -> dict:
    return {"mode": mode, "actors": actors, "seconds": round(seconds, 3),
            "images_per_second": round(images / seconds, 2), "identical": identical}


def _ray_run(artifact: str | Path, images: list[Path], out: Path, config: RayPredictConfig):
    """``predict_files_ray``'s report and the rate after its first batch (see ``_steady_rate``)."""
    marks: list[tuple[float, int]] = []
    report = predict_files_ray(artifact, images, out, config, lambda done, _: marks.append((time.perf_counter(), done)))
    return report, _steady_rate([mark for mark in marks if mark[1] > 0])  # (0, total) comes before Ray starts


def _steady_rate(marks: list[tuple[float, int]]) -> float | None:
    """Images/s from the first finished batch to the last (actor start and model loads left out); None with
    fewer than two batches."""
    if len(marks) < 2:
        return None
    (first, done_first), (last, done_last) = marks[0], marks[-1]
    return round((done_last - done_first) / (last - first), 2) if last > first else None


def _same_files(expected: Path, actual: Path) -> bool:
    """Whether ``actual`` holds the files of ``expected`` (its run file aside) with the same bytes."""
    names = sorted(path.name for path in expected.iterdir())
    return (sorted(path.name for path in actual.iterdir() if not path.name.startswith(".")) == names
            and all((expected / name).read_bytes() == (actual / name).read_bytes() for name in names))


@contextlib.contextmanager
def _ray_running() -> Iterator[None]:
    """Ray for the block: this process's where it runs one, else a local instance started here."""
    if require_ray().is_initialized():
        yield
        return
    with ray_session():
        yield


def camvid_frames(data: Path, count: int, splits: Sequence[str]) -> list[Path]:
    """The first ``count`` images of ``splits`` (in that order) under ``data``; missing splits are skipped."""
    frames: list[Path] = []
    for split in splits:
        folder = data / split
        if folder.is_dir():
            frames += sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    return frames[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--images", type=int, default=500, help="CamVid frames to segment (default 500)")
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "camvid")
    parser.add_argument("--splits", default="val,train", help="CamVid splits to take frames from, in order")
    parser.add_argument("--actors", default="1,2", help="actor counts of the Ray runs")
    parser.add_argument("--batch", type=int, default=8, help="images per actor call")
    parser.add_argument("--threads", type=int, default=None, help="inference threads per Segmenter")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "batch-predict.json")
    args = parser.parse_args(argv)
    frames = camvid_frames(args.data, args.images, args.splits.split(","))
    if not frames:
        parser.error(f"no frames under {args.data} in splits {args.splits}")
    result = measure_batch(args.artifact, frames, [int(n) for n in args.actors.split(",")], args.batch, args.threads)
    result |= {"requested_images": args.images, "splits": args.splits, "date": datetime.date.today().isoformat(),
               "machine": machine_info(args.threads)}
    write_json(args.json, result)
    for run in result["runs"]:
        print(f"{run['mode']:>5} x{run['actors']}: {run['images_per_second']:8.2f} images/s ({run['seconds']:.1f} s, "
              f"identical: {run['identical']})")
    print(f"{len(frames)} frames (of {args.images} asked); wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
