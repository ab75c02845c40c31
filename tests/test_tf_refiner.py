"""The TF refiner plugin: flow exactness and learning, masking, both sampling variants, its two stages."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import quick_overrides
from pcgen import DataInfo
from pcgen.config import ConfigError, load_config
from pcgen.data.jetfeatures import relative_jet_features
from pcgen.data.multiplicity import jet_condition, mask_for
from pcgen.data.pointclouds import JET_FEATURES
from pcgen.data.preprocessing import FeatureScaler
from pcgen.sampling import load_trained, seeded
from pcgen.runtime.checkpoint import load_checkpoint
from pcgen.train.likelihood import LikelihoodConfig, LikelihoodRecipe
from pcgen.train.recipe import Batch
from pcgen.train.runner import execute, resume_config
from pcgen.train.staged import StagedRecipe
from pcgen_tf_refiner import SPEC, JetFlow, JetMass, TFRefinerConfig, TFRefinerModel, build, coupling_masks
from toydata import toy_jets

INFO = DataInfo(30, JET_FEATURES)
QUICK = TFRefinerConfig(**SPEC.quick_config)


def model(config: TFRefinerConfig = QUICK, seed: int = 0) -> TFRefinerModel:
    with seeded(seed):
        return build(config, INFO).eval()


def masks(n: int = 30) -> torch.Tensor:
    return mask_for(torch.tensor([0, 1, 5, 12, n, n - 1]), n)


def toy_batch(num: int = 256, seed: int = 0) -> tuple[Batch, FeatureScaler]:
    jets = toy_jets(num, 30, seed=seed)
    points, mask = torch.from_numpy(jets.points), torch.from_numpy(jets.mask)
    scaler = FeatureScaler("standard").fit(points, mask)
    return Batch(scaler.transform(points, mask), mask, jet_condition(mask)), scaler


# -- registration and architecture -------------------------------------------------------------------


def test_the_plugin_registers_a_two_stage_model_with_paper_settings(registry) -> None:
    spec = registry.model("tf-refiner")
    assert spec.recipe == "staged" and [(s.name, s.recipe) for s in spec.stages] == [
        ("flow", "likelihood"), ("refiner", "adversarial")]
    cfg = load_config(None, [], registry, plugin="tf-refiner")
    flow, refiner = cfg.recipe.flow, cfg.recipe.refiner
    assert (flow.optimizer, flow.lr) == ("adamw", 7.22e-4)
    assert (refiner.loss, refiner.optimizer, refiner.schedule, refiner.cosine_cycles) == ("ls", "rmsprop", "cosine", 2)
    assert cfg.recipe.fraction("flow") == 0.25 and cfg.run.train.batch_size == 256
    assert spec.preprocessing == "standard" and not spec.permutation_equivariant and spec.critic_permutation_invariant


def test_the_default_architecture_follows_the_paper() -> None:
    net = model(TFRefinerConfig())
    layers = list(net.flow.flow.transform._transforms)
    from nflows.transforms import PiecewiseRationalQuadraticCouplingTransform

    assert len(layers) == 15 and all(isinstance(t, PiecewiseRationalQuadraticCouplingTransform) for t in layers)
    assert all(type(t.transform_net).__name__ == "ResidualNet" for t in layers)
    assert len(net.refiner.blocks) == 4 and len(net.critic.blocks) == 4
    masks_ = coupling_masks(90, 15, seed=0)
    assert all(not torch.equal(a, b) for a, b in itertools.pairwise(masks_))  # a new split per layer
    assert (torch.stack(masks_).sum(0) > 0).all()  # every dimension is transformed somewhere
    assert all(int(m.sum()) == 45 for m in masks_)


def test_config_errors_name_the_key(registry) -> None:
    with pytest.raises(ConfigError, match="'recipe.refiner.loss'"):
        load_config(None, ['recipe.refiner.loss="hinge"'], registry, plugin="tf-refiner")
    with pytest.raises(ConfigError, match="unknown key 'recipe.flow.lr_generator'"):
        load_config(None, ["recipe.flow.lr_generator=1e-3"], registry, plugin="tf-refiner")
    with pytest.raises(ConfigError, match="not divisible by num_heads"):
        load_config(None, ["model.embed_dim=10", "model.num_heads=4"], registry, plugin="tf-refiner")
    with pytest.raises(ValueError, match="critic_mass"):
        build(QUICK, DataInfo(30, ("x", "y", "z", "e")))


# -- the flow ------------------------------------------------------------------------------------------


def test_the_flows_inverse_is_exact() -> None:
    torch.manual_seed(0)
    flow = JetFlow(90, TFRefinerConfig(), context_features=1)
    with torch.no_grad():
        for p in flow.parameters():  # away from the near-identity initialisation
            p.add_(0.02 * torch.randn_like(p))
        context = torch.rand(32, 1)
        x, log_prob = flow.sample(32, context)
        z, logdet = flow(x, context)
        back, inverse_logdet = flow.inverse(z, context)
        assert torch.allclose(back, x, atol=1e-4)
        assert torch.allclose(logdet, -inverse_logdet, atol=1e-3)
        assert torch.allclose(flow.log_prob(x, context), log_prob, rtol=1e-5, atol=1e-3)
        flow.double()  # in double precision the round trip is exact to rounding
        x = x.double()
        back, _ = flow.inverse(flow(x, context.double())[0], context.double())
        assert torch.allclose(back, x, atol=1e-9)


def test_the_flows_log_likelihood_rises_during_stage_1() -> None:
    train, _ = toy_batch(512, seed=0)
    held_out, _ = toy_batch(256, seed=1)
    net = model()
    recipe = LikelihoodRecipe(net.flow, LikelihoodConfig(lr=3e-3, warmup_steps=0, schedule="constant"))

    def held_out_log_likelihood() -> float:
        with torch.no_grad(), seeded(7):
            return net.flow.log_prob(held_out.x, held_out.mask, held_out.cond).mean().item() / 90

    before = held_out_log_likelihood()
    torch.manual_seed(0)
    for step in range(40):
        idx = torch.randint(0, 512, (64,))
        recipe.training_step(Batch(train.x[idx], train.mask[idx], train.cond[idx]), step, 0.0)
    after = held_out_log_likelihood()
    assert after > before + 0.1, (before, after)


def test_padded_slots_never_reach_the_likelihood_or_a_sample() -> None:
    net = model()
    batch, _ = toy_batch(8)
    garbage = batch.x + 100 * torch.randn_like(batch.x) * (~batch.mask).unsqueeze(-1)
    with torch.no_grad():
        with seeded(1):
            a = net.flow.log_prob(batch.x, batch.mask, batch.cond)
        with seeded(1):
            b = net.flow.log_prob(garbage, batch.mask, batch.cond)
        assert torch.equal(a, b)  # padded inputs are replaced by the padding noise
        mask = masks()
        x = net.flow.sample(mask, jet_condition(mask))
    assert (x[~mask] == 0).all() and torch.isfinite(x).all()


# -- refiner and critic ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [30, 150])
def test_padded_particles_do_not_influence_refiner_outputs_or_critic_scores(n: int) -> None:
    with seeded(0):
        net = build(TFRefinerConfig(), DataInfo(n, JET_FEATURES))
    mask = masks(n)
    x = torch.randn(6, n, 3) * mask.unsqueeze(-1)
    garbage = x + 50 * torch.randn_like(x) * (~mask).unsqueeze(-1)
    for training in (False, True):  # with dropout on, the same seed gives the same dropout masks
        net.train(training)
        with torch.no_grad():
            with seeded(2):
                refined, score = net.refiner.refine(x, mask), net.critic(x, mask)
            with seeded(2):
                refined_garbage, score_garbage = net.refiner.refine(garbage, mask), net.critic(garbage, mask)
        assert torch.allclose(refined, refined_garbage, atol=1e-5) and (refined[~mask] == 0).all()
        assert torch.allclose(score, score_garbage, atol=1e-5) and torch.isfinite(score).all()
    net.eval()
    perm = torch.randperm(n)
    with torch.no_grad():
        assert torch.allclose(net.critic(x, mask), net.critic(x[:, perm], mask[:, perm]), atol=1e-5)


def test_the_critics_jet_mass_is_the_physical_relative_mass() -> None:
    jets = toy_jets(64, 30, seed=3)
    identity = JetMass((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    with torch.no_grad():
        mass = identity(torch.from_numpy(jets.points), torch.from_numpy(jets.mask))
    expected = relative_jet_features(jets.points, jets.mask)[:, 2]
    np.testing.assert_allclose(mass.numpy(), expected, rtol=1e-3, atol=1e-4)


def test_both_variants_sample_and_start_equal() -> None:
    net, mask = model(), masks()
    outputs = {}
    for variant in ("tf", "vnf"):
        net.select_variant(variant)
        with torch.no_grad(), seeded(5):
            outputs[variant] = net.sample(mask, jet_condition(mask))
        assert outputs[variant].shape == (6, 30, 3) and (outputs[variant][~mask] == 0).all()
    assert torch.equal(outputs["tf"], outputs["vnf"])  # the refiner's correction starts at zero
    assert net.variants[0] == "tf"
    with pytest.raises(ValueError, match="no sampling variant"):
        net.select_variant("gan")


def test_each_stage_trains_only_its_part(registry) -> None:
    net = model().train()
    recipe = StagedRecipe(net, load_config(None, ["recipe.warmup_steps=0"], registry, plugin="tf-refiner").recipe)
    assert {id(p) for p in net.part("refiner").generator.parameters()} == {id(p) for p in net.refiner.parameters()}
    batch, _ = toy_batch(32)

    def params(module: torch.nn.Module) -> list[torch.Tensor]:
        return [p.detach().clone() for p in module.parameters()]

    def same(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
        return all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))

    flow, refiner, critic = params(net.flow), params(net.refiner), params(net.critic)
    recipe.training_step(batch, 0, 0.0)
    assert recipe.stage == "flow" and not same(net.flow, flow) and same(net.refiner, refiner) and same(net.critic, critic)
    flow = params(net.flow)
    for step in (1, 2, 3):  # critic_steps = 3: the generator (refiner) updates at the stage's steps 0 and 3
        recipe.training_step(batch, step, 0.5)
    assert recipe.stage == "refiner" and same(net.flow, flow)
    assert not same(net.refiner, refiner) and not same(net.critic, critic)


@pytest.mark.parametrize("loss", ["ls", "vanilla", "wgan-gp"])
def test_every_adversarial_loss_trains_the_refiner(registry, loss: str) -> None:
    net = model().train()
    cfg = load_config(None, [f'recipe.refiner.loss="{loss}"'], registry, plugin="tf-refiner").recipe
    recipe = StagedRecipe(net, cfg)
    batch, _ = toy_batch(16)
    logs = recipe.training_step(batch, 0, 0.9)
    assert recipe.stage == "refiner" and all(np.isfinite(v) for v in logs.values())
    assert ("loss/gradient_penalty" in logs) == (loss == "wgan-gp")


def test_the_refiner_stage_matches_observables_when_asked(registry) -> None:
    """``recipe.refiner.match`` reaches the refiner's adversarial stage through the staged recipe."""
    net = model().train()
    cfg = load_config(None, ["recipe.refiner.match={mass = 1.0}"], registry, plugin="tf-refiner").recipe
    recipe = StagedRecipe(net, cfg)
    batch, scaler = toy_batch(16)
    recipe.bind_data(JET_FEATURES, scaler)
    logs = recipe.training_step(batch, 0, 0.9)
    assert recipe.stage == "refiner" and float(logs["loss/match/mass"]) > 0


# -- the real loop: resume in stage 2, TensorBoard, both variants from a checkpoint --------------------


def run(registry, tmp_path: Path, name: str, steps: int) -> Path:
    sets = quick_overrides(steps, **{"train.log_every": 1}) + [f"model.{k}={json.dumps(v)}" for k, v in
                                                                SPEC.quick_config.items()]
    cfg = load_config(None, sets + [f'name="{name}"', f'run_dir="{tmp_path}"'], registry, plugin="tf-refiner")
    return execute(cfg, registry, show_progress=False, final_eval=False).run_dir


def test_training_resumes_exactly_in_stage_2_and_both_variants_load(registry, tmp_path: Path, monkeypatch) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    straight = run(registry, tmp_path, "straight", 8)
    original, calls = StagedRecipe.training_step, {"n": 0}

    def flaky(self, batch, step, progress):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, batch, step, progress)

    monkeypatch.setattr(StagedRecipe, "training_step", flaky)
    cut = run(registry, tmp_path, "cut", 8)
    assert load_checkpoint(cut)["loop"]["step"] == 4 and load_checkpoint(cut)["recipe"]["stage_index"] == 1
    monkeypatch.undo()
    execute(resume_config(cut, [], registry), registry, run_dir=cut, resume=True, show_progress=False,
            final_eval=False)
    a, b = load_checkpoint(straight)["model"], load_checkpoint(cut)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    acc = EventAccumulator(str(straight / "tensorboard"))
    acc.Reload()
    assert [e.value for e in acc.Scalars("stage")] == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert {"loss/nll", "loss/critic", "loss/generator", "lr/flow/model", "lr/refiner/critic"} <= set(
        acc.Tags()["scalars"])

    trained = load_trained(straight, registry)
    tf, vnf = (trained.generate(40, seed=1, variant=v) for v in ("tf", "vnf"))
    assert tf.meta["variant"] == "tf" and vnf.meta["variant"] == "vnf"
    assert (tf.points[~tf.mask] == 0).all() and (vnf.points[~vnf.mask] == 0).all()
    assert not np.array_equal(tf.points, vnf.points)  # the refiner has learnt a correction


def test_the_critics_last_block_computing_the_class_token_only_changes_nothing() -> None:
    from pcgen_tf_refiner.networks import Critic

    torch.manual_seed(5)
    critic = Critic(QUICK, 3).double().eval()
    x = torch.randn(6, 30, 3, dtype=torch.float64)
    mask = mask_for(torch.randint(3, 31, (6,)), 30)
    tokens = torch.cat([critic.class_token.expand(6, -1, -1), critic.embed(x * mask.unsqueeze(-1))], dim=1)
    token_mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
    for block in critic.blocks:  # every token through every block, as a plain encoder
        tokens = block(tokens, token_mask)
    features = torch.cat([tokens[:, 0], critic.mass(x, mask).unsqueeze(-1).to(tokens)], dim=-1)
    assert torch.allclose(critic(x, mask), critic.head(features).squeeze(-1), atol=1e-10)


@pytest.mark.parametrize("inverse", [False, True])
def test_the_spline_coupling_computes_what_nflows_computes(inverse: bool) -> None:
    from nflows.nn.nets import ResidualNet
    from nflows.transforms import PiecewiseRationalQuadraticCouplingTransform
    from pcgen_tf_refiner.spline import SplineCoupling

    def net(i: int, o: int) -> torch.nn.Module:
        return ResidualNet(i, o, hidden_features=32, context_features=1, num_blocks=1)

    mask = coupling_masks(12, 1, 0)[0]
    ours = SplineCoupling(mask, net, num_bins=5, tails="linear", tail_bound=3.0).double()
    theirs = PiecewiseRationalQuadraticCouplingTransform(mask, net, num_bins=5, tails="linear", tail_bound=3.0).double()
    theirs.load_state_dict(ours.state_dict())
    with torch.no_grad():  # spline parameters far from the identity, and inputs on both sides of the bound
        for p in ours.parameters():
            p.add_(torch.randn_like(p))
        theirs.load_state_dict(ours.state_dict())
    x = (torch.randn(50, 12, dtype=torch.float64) * 2.5).requires_grad_(True)
    context = torch.rand(50, 1, dtype=torch.float64)
    run = (lambda t: t.inverse(x, context=context)) if inverse else (lambda t: t(x, context=context))
    (y1, l1), (y2, l2) = run(ours), run(theirs)
    assert torch.allclose(y1, y2, atol=1e-10) and torch.allclose(l1, l2, atol=1e-10)
    g1 = torch.autograd.grad((y1.square() + l1.unsqueeze(1)).sum(), [x, *ours.parameters()])
    g2 = torch.autograd.grad((y2.square() + l2.unsqueeze(1)).sum(), [x, *theirs.parameters()])
    assert all(torch.allclose(a, b, atol=1e-8) for a, b in zip(g1, g2, strict=True))
    with pytest.raises(ValueError, match="linear tails"):
        SplineCoupling(mask, net, num_bins=5, tails=None)
