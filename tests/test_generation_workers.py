"""Generation in forked one-thread processes: the same clouds as in one process, in order, and the
number of processes from the user's thread setting."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest
import torch
from toydata import toy_jets

import pcgen.threads as threads
from pcgen.config import load_config
from pcgen.runtime.workers import can_fork, map_in_processes
from pcgen.sampling import TrainedModel, batch_seed
from pcgen.train.data_prep import prepare

needs_fork = pytest.mark.skipif(not can_fork(), reason="this platform cannot fork")


@needs_fork
def test_jobs_run_in_order_in_other_one_thread_processes_without_pickling_the_job() -> None:
    unpicklable = {"offset": 100, "lock": __import__("threading").Lock()}  # a closure over it cannot be pickled

    def job(item: int) -> tuple[int, int, int]:
        return item + unpicklable["offset"], os.getpid(), torch.get_num_threads()

    results = list(map_in_processes(job, range(12), workers=3))
    assert [r[0] for r in results] == list(range(100, 112))
    assert os.getpid() not in {r[1] for r in results}
    assert {r[2] for r in results} == {1}


def test_one_worker_or_one_item_runs_here() -> None:
    assert [pid for pid in map_in_processes(lambda _: os.getpid(), range(3), workers=1)] == [os.getpid()] * 3
    assert list(map_in_processes(lambda _: os.getpid(), [0], workers=4)) == [os.getpid()]


@needs_fork
def test_a_worker_that_dies_makes_the_map_raise_instead_of_hanging() -> None:
    def job(item: int) -> int:
        if item == 2:
            os._exit(9)
        return item

    with pytest.raises(BrokenProcessPool):
        list(map_in_processes(job, range(6), workers=2))


def test_generation_workers_follow_the_users_thread_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "available_cpus", lambda: 4)
    previous, requested = torch.get_num_threads(), threads._requested
    try:
        threads.configure_threads(3)
        assert threads.generation_workers() == 3
        threads.configure_threads(0, share=2)
        assert threads.generation_workers() == 2  # 4 CPUs shared by 2 ranks, however busy the machine
        threads.configure_threads(1)
        assert threads.generation_workers() == 1
    finally:
        torch.set_num_threads(previous)
        threads._requested = requested


def test_batch_seeds_differ_between_batches_and_requests() -> None:
    seeds = {batch_seed(seed, start) for seed in (0, 1, -1) for start in (0, 136, 272)}
    assert len(seeds) == 9 and all(0 <= s < 2**63 for s in seeds)


@pytest.fixture(scope="module")
def trained(registry) -> TrainedModel:
    """An untrained quick igapt on toy jets (its samples are random, which is all this needs)."""
    spec, kind = registry.model("igapt"), registry.kind("jets")
    data = prepare(toy_jets(200, 30, seed=0), load_config(None, [], registry, plugin="igapt"), spec, kind)
    torch.manual_seed(0)
    model = registry.build_model(spec, spec.config_class.model_validate(spec.quick_config), data.info)
    return TrainedModel(spec, model, data.scaler, data.multiplicity, data.info, {}, kind)


@needs_fork
def test_workers_generate_the_same_clouds_as_one_process(trained: TrainedModel) -> None:
    seen: list[int] = []
    one = trained.generate(100, batch_size=16, seed=5, workers=1)
    two = trained.generate(100, batch_size=16, seed=5, workers=3, progress=seen.append)
    assert np.array_equal(one.points, two.points) and np.array_equal(one.mask, two.mask)
    assert sum(seen) == 100 and len(seen) == 7
    assert (two.points[~two.mask] == 0).all()
    other = trained.generate(100, batch_size=16, seed=6, workers=3)
    assert not np.array_equal(one.points, other.points)


def test_the_model_moves_to_the_device_outside_inference_mode(trained: TrainedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parameters moved under inference mode become inference tensors that training cannot use: a run on
    a GPU timed its final sampling (moving the model there), then failed at its first step."""
    modes: list[bool] = []
    move = type(trained.model).to

    def recording_move(module: torch.nn.Module, *args: object, **kwargs: object) -> torch.nn.Module:
        modes.append(torch.is_inference_mode_enabled())
        return move(module, *args, **kwargs)

    monkeypatch.setattr(type(trained.model), "to", recording_move)
    trained.generate(4, workers=1)
    assert modes and not any(modes)
    assert not any(p.is_inference() for p in trained.model.parameters())
