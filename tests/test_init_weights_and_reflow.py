"""Runs that start from trained weights (train.init_weights), and epic-fm's reflow few-step sampler."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import quick_overrides

from pcgen.config import ConfigError, load_config
from pcgen.sampling import load_trained
from pcgen.train.runner import execute

pytest.importorskip("pcgen_epic_fm")
from pcgen_epic_fm.networks import EPiCFlowMatching  # noqa: E402

TINY = ["model.hidden=16", "model.global_dim=4", "model.layers=1", "model.frequencies=2", "model.solver_steps=4"]


def run(registry, tmp: Path, name: str, extra: list[str], steps: int = 5, plugin: str = "epic-fm") -> Path:
    overrides = quick_overrides(steps) + (TINY if plugin == "epic-fm" else []) + [f'run_dir="{tmp}"', f"name={name}"]
    cfg = load_config(None, overrides + extra, registry, plugin=plugin)
    return execute(cfg, registry, show_progress=False, final_eval=False).run_dir


@pytest.fixture(scope="module")
def teacher(registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(registry, tmp_path_factory.mktemp("teacher"), "teacher", [], steps=30)


def reflow_losses(run_dir: Path) -> list[float]:
    """The training loss ``loss/reflow`` a run logged to TensorBoard, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    tag = next(t for t in events.Tags()["scalars"] if t.endswith("reflow"))
    return [e.value for e in events.Scalars(tag)]


def state(run_dir: Path, registry) -> dict[str, torch.Tensor]:
    return load_trained(run_dir, registry).model.state_dict()


def test_a_run_starts_from_the_weights_it_is_given(registry, teacher: Path, tmp_path: Path) -> None:
    start = state(teacher, registry)
    tuned = run(registry, tmp_path, "tuned", [f'train.init_weights="{teacher}"', "train.max_steps=1",
                                               "recipe.lr=1e-12"], steps=1)
    after = state(tuned, registry)
    fresh = state(run(registry, tmp_path, "fresh", ["recipe.lr=1e-12"], steps=1), registry)
    velocity = [k for k in start if k.startswith("velocity.")]
    assert all(torch.allclose(start[k], after[k], atol=1e-6) for k in velocity)
    assert not all(torch.allclose(start[k], fresh[k], atol=1e-6) for k in velocity)


def test_init_weights_refuses_another_model_or_another_preprocessing(registry, teacher: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds a epic-fm model, this run trains igapt"):
        run(registry, tmp_path, "other", [f'train.init_weights="{teacher}"'], plugin="igapt")
    with pytest.raises(ConfigError, match="preprocessed differently"):
        run(registry, tmp_path, "scaled", [f'train.init_weights="{teacher}"', "data.feature_spread=5"])
    with pytest.raises(ConfigError, match="no such run folder"):
        run(registry, tmp_path, "missing", ['train.init_weights="/nonexistent/run"'])


def test_reflow_starts_student_and_teacher_from_the_loaded_average(registry, teacher: Path) -> None:
    trained = load_trained(teacher, registry)
    config = trained.model.config.model_copy(update={"reflow_pairs": 64})
    student = EPiCFlowMatching(config, trained.data_info)
    assert not bool(student.teacher_loaded)
    student.load_state_dict(trained.model.state_dict())
    ema = trained.model.ema.state_dict()
    assert bool(student.teacher_loaded)
    for key, value in ema.items():
        assert torch.equal(student.teacher.state_dict()[key], value)
        assert torch.equal(student.velocity.state_dict()[key], value)
    again = EPiCFlowMatching(config, trained.data_info)
    again.load_state_dict(student.state_dict())  # reflow weights load as they are
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), student.state_dict().values(), strict=True))


def test_reflow_without_a_teacher_says_how_to_give_one(registry, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="train.init_weights"):
        run(registry, tmp_path, "no-teacher", ["model.reflow_pairs=32"])


def test_reflow_training_lowers_its_loss_and_samples_in_few_steps(registry, teacher: Path, tmp_path: Path) -> None:
    student = run(registry, tmp_path, "reflow", [f'train.init_weights="{teacher}"', "model.reflow_pairs=64",
                                                  "recipe.warmup_steps=0"], steps=60)
    losses = reflow_losses(student)
    assert len(losses) >= 2 and losses[-1] < losses[0]
    one_step = load_trained(student, registry, overrides=["model.solver_steps=1", "model.default_solver=euler"])
    assert one_step.model.variant == "euler"
    clouds = one_step.generate(16, seed=0)
    assert clouds.points.shape[0] == 16 and (clouds.points[~clouds.mask] == 0).all()


def _student_of(trained, **update: object) -> EPiCFlowMatching:
    """A reflow model with ``update`` to the config, started from the trained weights (as a run would be)."""
    student = EPiCFlowMatching(trained.model.config.model_copy(update={"reflow_pairs": 64, **update}),
                               trained.data_info)
    student.load_state_dict(trained.model.state_dict())
    return student


def test_solver_distillation_loss_is_zero_for_the_teachers_own_solver_and_ignores_padding(registry, teacher: Path) -> None:
    trained = load_trained(teacher, registry)
    student = _student_of(trained, reflow_loss="solver", default_solver="midpoint", solver_steps=3,
                          reflow_teacher_steps=3)
    info = trained.data_info
    generator = torch.Generator().manual_seed(0)
    mask = torch.ones(8, info.max_particles, dtype=torch.bool)
    mask[:, info.max_particles // 2:] = False
    cond = torch.full((8, info.cond_dim), 0.5)
    x0 = torch.randn(*mask.shape, student.num_features, generator=generator) * mask.unsqueeze(-1)
    times = torch.linspace(0.0, 1.0, 4)
    with torch.no_grad():
        x1 = student._integrate(student.teacher, x0, mask, cond, "midpoint", times) * mask.unsqueeze(-1)
        assert student._solver_loss(x0, x1, mask, cond).item() < 1e-10  # student = teacher, same solver
        padded = x1.clone()
        padded[~mask] = float("nan")
        assert student._solver_loss(x0, padded, mask, cond).item() < 1e-10
        two_euler = _student_of(trained, reflow_loss="solver", default_solver="euler", solver_steps=2)
        assert two_euler._solver_loss(x0, x1, mask, cond).item() > 1e-6  # a coarser solver misses the clouds
    loss = two_euler._solver_loss(x0, x1, mask, cond)
    loss.backward()
    assert all(p.grad is not None for p in two_euler.velocity.parameters())
    assert all(p.grad is None for p in two_euler.teacher.parameters())


def test_solver_distillation_brings_the_few_step_solve_closer_to_the_teacher(registry, teacher: Path, tmp_path: Path) -> None:
    reflowed = run(registry, tmp_path, "distil", [f'train.init_weights="{teacher}"', "model.reflow_pairs=64",
                                                   "model.reflow_loss=solver", "model.default_solver=euler",
                                                   "model.solver_steps=2", "recipe.warmup_steps=0"], steps=60)
    losses = reflow_losses(reflowed)
    assert len(losses) >= 2 and losses[-1] < losses[0]


def test_a_solver_distilled_student_offers_only_the_sampler_it_was_distilled_onto(registry, teacher: Path) -> None:
    trained = load_trained(teacher, registry)
    distilled = _student_of(trained, reflow_loss="solver", default_solver="euler", solver_steps=2)
    assert distilled.variants == ("euler",)
    assert _student_of(trained, default_solver="euler").variants == ("euler", "midpoint", "dopri5")
