"""The training engine: learning, determinism, checkpoints, resume, TensorBoard output."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
from conftest import quick_overrides

from pcgen.config import load_config
from pcgen.runtime.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pcgen.train.recipe import warmup_cosine
from pcgen.train.runner import execute, resume_config


def train(registry, tmp_path: Path, name: str, steps: int, plugin: str = "igapt", **extra) -> Path:
    cfg = load_config(None, quick_overrides(steps, **extra) + [f'name="{name}"', f'run_dir="{tmp_path}"'],
                      registry, plugin=plugin)
    return execute(cfg, registry, show_progress=False, final_eval=False).run_dir


def weights(run_dir: Path, name: str = "last.pt") -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / name)["model"]


def test_same_config_and_seed_give_the_same_weights(registry, tmp_path: Path) -> None:
    a, b = weights(train(registry, tmp_path, "a", 6)), weights(train(registry, tmp_path, "b", 6))
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = weights(train(registry, tmp_path, "c", 6, **{"train.seed": 1}))
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("plugin", ["igapt", "omnijet"])
def test_evaluating_during_training_does_not_change_the_training(registry, tmp_path: Path, plugin: str) -> None:
    small = {f"model.{k}": json.dumps(v) for k, v in registry.model(plugin).quick_config.items()}
    quiet = weights(train(registry, tmp_path, "quiet", 12, plugin, **small))
    watched = train(registry, tmp_path, "watched", 12, plugin, **small, **{"train.eval_every": 4, "eval.num_jets": 40})
    assert (watched / "checkpoints" / "best.pt").is_file()  # the evaluations did happen
    assert all(torch.equal(quiet[k], weights(watched)[k]) for k in quiet)


def test_the_best_checkpoint_of_a_staged_model_comes_from_its_last_stage(registry, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    evaluate = importlib.import_module("pcgen.metrics.evaluate")  # the module (pcgen.metrics.evaluate is also a function)
    calls = iter(range(1, 1000))  # every evaluation worse than the one before: the first would be the best
    monkeypatch.setattr(evaluate, "compute_metrics", lambda *args, **kwargs: dict.fromkeys(("w1m", "w1p"), float(next(calls))))
    small = {f"model.{k}": json.dumps(v) for k, v in registry.model("omnijet").quick_config.items()}
    run = train(registry, tmp_path, "staged", 12, "omnijet", **small, **{"train.eval_every": 1, "eval.num_jets": 30})
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["recipe"]["stage_index"] == 1  # the GPT stage: the tokenizer stage's samples are not OmniJet's
    assert best["loop"]["step"] > best["recipe"]["stage_start"]


def interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Make the recipe's ``call``-th training step raise KeyboardInterrupt (as Ctrl-C would)."""
    from pcgen.train import adversarial

    original = adversarial.AdversarialRecipe.training_step
    calls = {"n": 0}

    def flaky(self, batch, step, progress):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(self, batch, step, progress)

    monkeypatch.setattr(adversarial.AdversarialRecipe, "training_step", flaky)


def test_an_interrupted_run_resumes_exactly_where_it_stopped(registry, tmp_path: Path, monkeypatch) -> None:
    straight = weights(train(registry, tmp_path, "straight", 12))
    interrupt_at(monkeypatch, 7)
    cfg = load_config(None, quick_overrides(12) + ['name="cut"', f'run_dir="{tmp_path}"'], registry, plugin="igapt")
    cut = execute(cfg, registry, show_progress=False, final_eval=False)
    assert not cut.completed and cut.step == 6
    assert load_checkpoint(cut.run_dir)["loop"]["step"] == 6
    monkeypatch.undo()
    result = execute(resume_config(cut.run_dir, [], registry), registry, run_dir=cut.run_dir, resume=True,
                     show_progress=False, final_eval=False)
    assert result.completed and result.step == 12
    resumed = weights(cut.run_dir)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_resume_can_extend_a_finished_run(registry, tmp_path: Path) -> None:
    run_dir = train(registry, tmp_path, "short", 4)
    result = execute(resume_config(run_dir, ["train.max_steps=7"], registry), registry, run_dir=run_dir,
                     resume=True, show_progress=False, final_eval=False)
    assert result.step == 7
    assert "max_steps = 7" in (run_dir / "config.toml").read_text()


def test_checkpoints_are_atomic_and_load_with_weights_only(tmp_path: Path) -> None:
    path = save_checkpoint({"model": {"w": torch.ones(3)}, "config": "{}"}, tmp_path / "ck" / "last.pt")
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
    assert torch.equal(torch.load(path, weights_only=True)["model"]["w"], torch.ones(3))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_tensorboard_gets_scalars_figures_and_hparams_in_the_runs_own_event_file(registry, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config(None, quick_overrides(10, **{"train.log_every": 2, "train.eval_every": 5})
                      + [f'run_dir="{tmp_path}"'], registry, plugin="igapt")
    run_dir = execute(cfg, registry, show_progress=False, final_eval=True).run_dir
    tb = run_dir / "tensorboard"
    assert [p for p in tb.iterdir() if p.is_dir()] == []  # hparams did not make a stray sub-run
    acc = EventAccumulator(str(tb), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"loss/critic", "loss/generator", "lr/generator", "lr/critic", "grad_norm/critic"} <= scalars
    assert {"metrics/w1m", "metrics/w1p", "hparam/w1m"} <= scalars
    assert {"distributions", "final/distributions"} <= set(acc.Tags()["images"])
    assert len(acc.Scalars("metrics/w1m")) == 2  # steps 5 and 10
    assert acc.Tags()["tensors"], "hparams summaries and the config text are missing"


def test_warmup_then_cosine_schedule() -> None:
    assert warmup_cosine(0, 0.0, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 0.0, 10) == pytest.approx(1.0)
    assert warmup_cosine(50, 0.5, 10) == pytest.approx(0.5)
    assert warmup_cosine(99, 1.0, 10) == pytest.approx(0.0)
    assert warmup_cosine(50, 0.5, 10, cycles=2) == pytest.approx(1.0)


def test_a_models_own_generator_loss_is_added_and_logged() -> None:
    from torch import nn

    from pcgen import AdversarialModel
    from pcgen.data.multiplicity import jet_condition, mask_for
    from pcgen.train.adversarial import AdversarialConfig, AdversarialRecipe
    from pcgen.train.recipe import Batch

    class Gen(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 3)

        def forward(self, mask, cond):  # noqa: ANN001, ANN202
            return self.lin(torch.randn(*mask.shape, 2))

    class Critic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 1)

        def forward(self, x, mask, cond):  # noqa: ANN001, ANN202
            return (self.lin(x).squeeze(-1) * mask).sum(1)

    class WithPull(AdversarialModel):
        def generator_extra_losses(self, real, fake, step):  # noqa: ANN001, ANN202
            return {"pull": 100.0 * (fake.mean() - 5.0) ** 2} if step < 2 else {}

    torch.manual_seed(0)
    model = WithPull(Gen(), Critic())
    recipe = AdversarialRecipe(model, AdversarialConfig(optimizer="adam", lr_generator=0.05, warmup_steps=0))
    mask = mask_for(torch.tensor([3, 5, 2, 4]), 5)
    batch = Batch(torch.randn(4, 5, 3) * mask.unsqueeze(-1), mask, jet_condition(mask))
    first = recipe.training_step(batch, 0, 0.0)
    assert "loss/pull" in first
    assert recipe.training_step(batch, 1, 0.0)["loss/pull"] < first["loss/pull"]  # the term is optimised
    assert "loss/pull" not in recipe.training_step(batch, 2, 0.0)


def test_final_evaluation_stores_the_training_splits_efp_normalisation(registry, tmp_path: Path) -> None:
    overrides = quick_overrides(2, **{"eval.efp": "true", "eval.metrics": '["w1m", "fpd", "kpd"]'})
    cfg = load_config(None, overrides + ['name="efp"', f'run_dir="{tmp_path}"'], registry, plugin="igapt")
    run_dir = execute(cfg, registry, show_progress=False).run_dir
    stored = json.loads((run_dir / "metrics.json").read_text())
    assert stored["counts"] == {"truth": [100, 100], "igapt": [100, 100]}
    protocol = stored["protocol"]
    assert protocol["fpd_kpd"] == "pcgen" and protocol["batch_size"] == 20
    normalisation = protocol["efp_normalisation"]
    assert normalisation["source"].startswith("training split") and normalisation["num_jets"] > 100
    assert "| Jets |" in (run_dir / "metrics.md").read_text()


def test_the_best_checkpoint_is_chosen_on_every_in_training_metric() -> None:
    from pcgen.train.trainer import selection_score

    good_mass_bad_particles = selection_score({"w1m": 6.1, "w1p": 6.3}, ["w1m", "w1p"])
    balanced = selection_score({"w1m": 12.6, "w1p": 1.45}, ["w1m", "w1p"])
    assert balanced < good_mass_bad_particles
    assert selection_score({"w1m": 2.0, "w1p": 1.0}, ["w1m", "w1p"]) < selection_score({"w1m": 1.0, "w1p": 4.0},
                                                                                       ["w1m", "w1p"])
    assert selection_score({"w1m": float("nan"), "w1p": 1.0}, ["w1m", "w1p"]) == float("inf")
    assert selection_score({"w1p": 1.0}, ["w1m", "w1p"]) == float("inf")
