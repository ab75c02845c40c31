"""Data-parallel training over 2 processes on the CPU (gloo), as under ``torchrun``: every rank trains on its
own part of each batch, the weights stay identical, rank 0 alone writes, resume is exact, and a
checkpoint of 2 ranks loads in one process."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from conftest import quick_overrides

from pcgen.train.distributed import RankInfo, rank_slice

WORLD = 2


def test_each_rank_takes_its_own_equal_part_of_the_batch() -> None:
    parts = [rank_slice(8, RankInfo(rank, 2)) for rank in range(2)]
    assert parts == [slice(0, 4), slice(4, 8)]
    assert rank_slice(8, RankInfo()) == slice(0, 8)
    with pytest.raises(ValueError, match="multiple of 3"):
        rank_slice(8, RankInfo(0, 3))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _rank_main(rank: int, port: int, out: str, plugin: str, sets: list[str], resume: str | None) -> None:
    """One rank of a 2-process run (started by torch.multiprocessing); writes what it saw to ``out``."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from conftest import ToyDataPlugin

    from pcgen.config import load_config
    from pcgen.plugins import load_registry
    from pcgen.train import trainer as trainer_module
    from pcgen.train.recipe import host_values
    from pcgen.train.runner import execute, resume_config

    registry = load_registry(extra_plugins=[ToyDataPlugin()])
    seen: list[list[float]] = []
    logs: list[dict[str, float]] = []
    box: dict[str, Any] = {}
    original_batch, original_after = trainer_module.Trainer._batch, trainer_module.Trainer._after_step

    def batch(self, step):  # noqa: ANN001, ANN202
        box["trainer"] = self
        b = original_batch(self, step)
        seen.append(b.x.sum(dim=(1, 2)).tolist())  # a fingerprint of each cloud
        return b

    def after(self, values, progress, task):  # noqa: ANN001, ANN202
        logs.append(host_values(values))
        return original_after(self, values, progress, task)

    trainer_module.Trainer._batch, trainer_module.Trainer._after_step = batch, after
    if resume:
        cfg = resume_config(Path(resume), sets, registry)
    else:
        cfg = load_config(None, sets, registry, plugin=plugin)
    result = execute(cfg, registry, run_dir=Path(resume) if resume else None, resume=resume is not None,
                     show_progress=False, final_eval=False)
    model = box["trainer"].recipe.model
    Path(out, f"rank{rank}.json").write_text(json.dumps({
        "seen": seen, "logs": logs, "step": result.step, "run_dir": str(result.run_dir),
        "weights": _digest(model.state_dict()), "threads_left": _thread_names(),
    }))


def _thread_names() -> list[str]:
    """Names of this process's threads (Linux), e.g. gloo's ``pt_gloo_runloop`` workers."""
    tasks = Path("/proc/self/task")
    return sorted((task / "comm").read_text().strip() for task in tasks.iterdir()) if tasks.is_dir() else []


def run_ranks(tmp_path: Path, name: str, plugin: str, sets: list[str], resume: Path | None = None) -> list[dict]:
    out = tmp_path / f"out-{name}"
    out.mkdir()
    mp.start_processes(_rank_main, args=(_free_port(), str(out), plugin, sets, str(resume) if resume else None),
                       nprocs=WORLD, start_method="spawn")
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]


def small(registry: Any, plugin: str) -> list[str]:
    return [f"model.{k}={json.dumps(v)}" for k, v in registry.model(plugin).quick_config.items()]


def check_ranks(ranks: list[dict], batch_size: int) -> None:
    """The weights agree; at every step the ranks trained on disjoint halves of the batch; the process
    group's threads ended with the run (a gloo worker left running can abort the rank at exit)."""
    assert ranks[0]["weights"] == ranks[1]["weights"]
    for rank in ranks:
        assert not [name for name in rank["threads_left"] if "gloo" in name], rank["threads_left"]
    assert ranks[0]["run_dir"] == ranks[1]["run_dir"]
    for first, second in zip(ranks[0]["seen"], ranks[1]["seen"], strict=True):
        assert len(first) == len(second) == batch_size // WORLD
        assert not set(first) & set(second)


def test_two_ranks_train_a_gan_with_gradient_penalty_and_resume_exactly(registry, tmp_path: Path) -> None:
    from pcgen.sampling import load_trained
    from pcgen.runtime.checkpoint import load_checkpoint

    base = quick_overrides(8, **{"recipe.loss": '"wgan-gp"', "recipe.schedule": '"constant"',
                                 "train.checkpoint_every": 4}) + small(registry, "igapt")
    base += [f'run_dir="{tmp_path}"']
    straight = run_ranks(tmp_path, "straight", "igapt", base + ['name="straight"'])
    check_ranks(straight, 32)
    assert all("loss/gradient_penalty" in entry for entry in straight[0]["logs"])
    run = Path(straight[0]["run_dir"])
    assert len(list((run / "tensorboard").glob("events.*"))) == 1  # rank 0 alone logs
    assert len(load_checkpoint(run)["rng_ranks"]) == WORLD

    cut = run_ranks(tmp_path, "cut", "igapt", [s for s in base if "max_steps" not in s] +
                    ['name="cut"', "train.max_steps=4"])
    resumed = run_ranks(tmp_path, "resumed", "igapt", ["train.max_steps=8"], resume=Path(cut[0]["run_dir"]))
    assert resumed[0]["step"] == 8
    assert resumed[0]["seen"] == straight[0]["seen"][4:] and resumed[1]["seen"] == straight[1]["seen"][4:]
    assert resumed[0]["weights"] == straight[0]["weights"]

    trained = load_trained(run, registry)  # a checkpoint of 2 ranks in one process
    assert len(trained.generate(20, seed=1)) == 20


@pytest.mark.parametrize("plugin", ["mdma", "tf-refiner", "omnijet", "epic-fm", "epic-gan"])
def test_two_ranks_train_every_kind_of_recipe(registry, tmp_path: Path, plugin: str) -> None:
    """MDMA's extra generator loss; a likelihood then adversarial staged model; an objective then
    autoregressive staged model; flow matching with EMA weights (objective); EPiC-GAN."""
    steps = 12
    sets = quick_overrides(steps) + small(registry, plugin) + [f'run_dir="{tmp_path}"', f'name="{plugin}"']
    ranks = run_ranks(tmp_path, plugin, plugin, sets)
    check_ranks(ranks, 32)
    logs = ranks[0]["logs"]
    assert len(logs) == steps and all(all(v == v for v in entry.values()) for entry in logs)
    if plugin == "tf-refiner":  # the flow's likelihood stage: its loss falls
        nll = [entry["loss/nll"] for entry in logs if "loss/nll" in entry]
        assert len(nll) >= 3 and nll[-1] < nll[0]
    if plugin == "omnijet":
        assert {"loss/reconstruction", "loss/nll"} <= {k for entry in logs for k in entry}


def test_torchrun_trains_with_two_processes(registry, tmp_path: Path) -> None:
    """The documented launch line: ``torchrun --nproc_per_node=2 $(which pcgen) run ...``."""
    from pcgen.data.store import write_pointclouds
    from toydata import toy_jets

    data = tmp_path / "jets.h5"
    write_pointclouds(toy_jets(400, 30), data)
    sets = [s for s in quick_overrides(4) if not s.startswith("data.")] + small(registry, "igapt")
    sets += ['data.dataset="file"', f'data.path="{data}"', f'run_dir="{tmp_path}"', 'name="torchrun"']
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(Path(sys.executable).parent / "pcgen"), "run", "--plugin", "igapt", "--quiet"]
    for s in sets:
        command += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "torchrun"
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "metrics.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["torchrun"]  # one run folder, made by rank 0
