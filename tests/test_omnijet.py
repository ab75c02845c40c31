"""OmniJet: the VQ-VAE tokenizer, the GPT (sequences, causality, KV cache, stop token) and both stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import quick_overrides

from pcgen import IGNORE, Batch, DataInfo
from pcgen.config import load_config
from pcgen.data.multiplicity import jet_condition, mask_for
from pcgen.data.pointclouds import JET_FEATURES, SHOWER_FEATURES
from pcgen.sampling import load_trained, seeded
from pcgen.train.autoregressive import AutoregressiveConfig, AutoregressiveRecipe
from pcgen.train.objective import ObjectiveRecipe, OptimiserConfig
from pcgen.train.runner import execute
from pcgen_omnijet.config import OmniJetConfig
from pcgen_omnijet.plugin import SPEC, OmniJetModel, build

QUICK = OmniJetConfig(**SPEC.quick_config)


def model(n: int = 12, features: tuple[str, ...] = JET_FEATURES, **changes: object) -> OmniJetModel:
    with seeded(0):
        return build(QUICK.model_copy(update=changes), DataInfo(n, features))


def clouds(counts: list[int], n: int = 12, seed: int = 0) -> Batch:
    """Random clouds with the given multiplicities; pt_rel (feature 2) decreasing within each cloud."""
    mask = mask_for(torch.tensor(counts), n)
    with seeded(seed):
        x = torch.randn(len(counts), n, 3)
    x[..., 2] = -torch.arange(n, dtype=torch.float32)
    return Batch(x * mask.unsqueeze(-1), mask, jet_condition(mask))


# -- tokenizer -----------------------------------------------------------------------------------------


def test_tokens_follow_their_particles_and_ignore_padding() -> None:
    tok = model().tokenizer
    b = clouds([3, 12, 7])
    tokens = tok.tokenize(b.x, b.mask)
    assert (tokens[~b.mask] == -1).all() and (tokens[b.mask] >= 0).all()
    perm = torch.randperm(12)
    assert torch.equal(tok.tokenize(b.x[:, perm], b.mask[:, perm]), tokens[:, perm])
    garbage = b.x + 100 * (~b.mask).unsqueeze(-1)
    assert torch.equal(tok.tokenize(garbage, b.mask), tokens)
    decoded = tok.decode(tokens, b.mask)
    assert decoded.shape == b.x.shape and (decoded[~b.mask] == 0).all()


def test_nearest_code_is_the_true_argmin() -> None:
    tok = model().tokenizer
    z = torch.randn(50, QUICK.latent_dim)
    assert torch.equal(tok.nearest(z), torch.cdist(z, tok.codebook.detach()).argmin(-1))


@pytest.mark.parametrize(("beta", "moves"), [(1.0, "codebook"), (0.0, "encoder")])
def test_beta_splits_the_commitment_between_codebook_and_encoder(beta: float, moves: str) -> None:
    tok = model(beta=beta).tokenizer
    tok.training_losses(clouds([5, 9]), 0)["commitment"].backward()
    still = {"codebook": tok.encoder[0].weight, "encoder": tok.codebook}[moves]
    moved = {"codebook": tok.codebook, "encoder": tok.encoder[0].weight}[moves]
    assert still.grad is None or not still.grad.any()
    assert moved.grad is not None and moved.grad.abs().sum() > 0


def test_the_straight_through_estimator_brings_reconstruction_gradients_to_the_encoder() -> None:
    tok = model().tokenizer
    tok.training_losses(clouds([5, 9]), 0)["reconstruction"].backward()
    assert tok.encoder[0].weight.grad is not None and tok.encoder[0].weight.grad.abs().sum() > 0
    assert tok.codebook.grad is None or not tok.codebook.grad.any()  # the codebook learns from commitment only


def test_unused_codes_are_replaced_every_k_steps_and_usage_is_logged() -> None:
    tok = model(replace_every=2).tokenizer
    batch = clouds([12, 12, 12])
    tok.training_losses(batch, 0)
    assert "codebook/usage" not in tok.after_step(batch, 0)  # step 1 of 2: no replacement yet
    used = tok.window_counts > 0
    before = tok.codebook.detach().clone()
    tok.training_losses(batch, 1)
    used |= tok.window_counts > 0
    logs = tok.after_step(batch, 1)
    assert logs["codebook/replaced"] == float((~used).sum()) > 0
    assert logs["codebook/usage"] == pytest.approx(used.float().mean().item())
    assert torch.equal(tok.codebook[used], before[used]) and not torch.equal(tok.codebook[~used], before[~used])
    encodings = tok.encoder(batch.x[batch.mask]).detach()
    assert torch.cdist(tok.codebook[~used].detach(), encodings).min(-1).values.max() < 0.1  # moved onto the data
    assert not tok.window_counts.any()


def test_tokenizer_training_lowers_the_reconstruction_error() -> None:
    tok = model(codebook_size=64).tokenizer
    batch = clouds([12] * 16)
    recipe = ObjectiveRecipe(tok, OptimiserConfig(lr=3e-3, warmup_steps=0, schedule="constant"))
    first = recipe.training_step(batch, 0, 0.0)["loss/reconstruction"]
    for step in range(1, 150):
        last = recipe.training_step(batch, step, step / 150)
    assert last["loss/reconstruction"] < 0.5 * first
    assert "codebook/usage" in last or "codebook/batch_usage" in last


def test_held_out_losses_change_neither_the_tokenizer_nor_its_code_statistics() -> None:
    tok = model(codebook_size=64).tokenizer
    recipe = ObjectiveRecipe(tok, OptimiserConfig(lr=3e-3, warmup_steps=0, schedule="constant"))
    recipe.training_step(clouds([12] * 8), 0, 0.0)
    before = {k: v.clone() for k, v in tok.state_dict().items()}
    values = recipe.validation_losses(clouds([5, 9, 12], seed=3), step=1)
    assert {"reconstruction", "commitment"} <= set(values) and tok.training
    for name, tensor in tok.state_dict().items():
        assert torch.equal(tensor, before[name]), name


# -- GPT -----------------------------------------------------------------------------------------------


def test_held_out_loss_exposes_a_gpt_that_memorises_its_batch() -> None:
    net = model()

    def random_clouds(seed: int) -> Batch:  # every feature random, so that the tokens differ from cloud to cloud
        with seeded(seed):
            x, mask = torch.randn(8, 12, 3), torch.ones(8, 12, dtype=torch.bool)
        return Batch(x, mask, jet_condition(mask))

    seen, unseen = random_clouds(0), random_clouds(1)
    recipe = AutoregressiveRecipe(net.gpt, AutoregressiveConfig(lr=3e-3, warmup_steps=0, schedule="constant"))
    start = recipe.validation_losses(seen, 0)["nll"]
    for step in range(80):
        recipe.training_step(seen, step, step / 80)
    memorised = recipe.validation_losses(seen, 80)["nll"]
    assert memorised < 0.3 * start
    assert recipe.validation_losses(unseen, 80)["nll"] > 3 * memorised  # the held-out loss shows it


def test_sequences_are_start_tokens_by_decreasing_pt_then_stop() -> None:
    gpt = model().gpt
    b = clouds([3, 5])
    b.x[0, :3, 2] = torch.tensor([1.0, 3.0, 2.0])  # pt_rel order 1, 2, 0
    tokens = gpt.tokenizer.tokenize(b.x, b.mask)
    inputs, targets = gpt.token_sequences(b.x, b.mask, b.cond)
    assert inputs.shape == targets.shape == (2, 6)  # cut to the longest cloud + the start token
    assert (inputs[:, 0] == gpt.start_token).all()
    assert targets[0, :3].tolist() == tokens[0, [1, 2, 0]].tolist()
    assert inputs[0, 1:4].tolist() == tokens[0, [1, 2, 0]].tolist()
    assert targets[0, 3] == gpt.stop_token and (targets[0, 4:] == IGNORE).all()
    assert targets[1, 5] == gpt.stop_token


def test_the_gpt_is_causal() -> None:
    gpt = model().gpt.eval()
    tokens = torch.randint(0, QUICK.codebook_size, (2, 10))
    changed = tokens.clone()
    changed[:, 6] = (changed[:, 6] + 1) % QUICK.codebook_size
    a, b = gpt.next_token_logits(tokens), gpt.next_token_logits(changed)
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6) and not torch.allclose(a[:, 6:], b[:, 6:])


def test_the_kv_cache_gives_the_logits_and_samples_of_full_recomputation() -> None:
    gpt = model(n=20).gpt.eval()
    tokens = torch.randint(0, QUICK.codebook_size, (3, 9))
    full = gpt.next_token_logits(tokens)
    cache = gpt._new_cache(3)
    cached = torch.cat([gpt.next_token_logits(tokens[:, :4], cache=cache)]
                       + [gpt.next_token_logits(tokens[:, i : i + 1], cache=cache) for i in range(4, 9)], dim=1)
    assert torch.allclose(full, cached, atol=1e-5)
    with torch.no_grad():
        gpt.head.bias[gpt.stop_token] = 3.5  # p(stop) ~ 0.1: lengths vary, finished rows are dropped on the way
    with seeded(1):
        with_cache = gpt.generate_tokens(16)
    gpt.config.kv_cache = False
    with seeded(1):
        without = gpt.generate_tokens(16)
    assert all(torch.equal(a, b) for a, b in zip(with_cache, without, strict=True))
    lengths = with_cache[1].sum(1)
    assert len(set(lengths.tolist())) > 3 and lengths.max() > 2 * lengths.float().median()


def test_multiplicity_ends_where_the_stop_token_is_drawn() -> None:
    gpt = model().gpt.eval()
    with torch.no_grad():
        gpt.head.bias[gpt.stop_token] = 50.0
    assert gpt.generate_tokens(4)[1].sum() == 0  # the stop token comes first
    with torch.no_grad():
        gpt.head.bias[gpt.stop_token] = -50.0
    assert (gpt.generate_tokens(4)[1].sum(1) == 12).all()  # never drawn: cut at N
    lengths = torch.tensor([0, 3, 12, 7])
    x = gpt.sample(mask_for(lengths, 12), jet_condition(mask_for(lengths, 12)))
    assert ((x.abs().sum(-1) > 0).sum(1) <= lengths).all() and (x[~mask_for(lengths, 12)] == 0).all()
    assert torch.equal(gpt.generate_tokens(4, lengths)[1].sum(1), lengths)


def test_top_k_one_is_greedy_and_temperature_is_applied() -> None:
    gpt = model(top_k=1).gpt.eval()
    with seeded(1):
        a = gpt.generate_tokens(3)
    with seeded(2):
        b = gpt.generate_tokens(3)
    assert torch.equal(a[0], b[0])
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    gpt.config.top_k, gpt.config.temperature = 0, 1e-4
    assert gpt._draw(logits).item() == 2


def test_gpt_training_lowers_the_next_token_loss() -> None:
    net = model()
    batch = clouds([4, 8, 12, 6] * 4)
    recipe = AutoregressiveRecipe(net.gpt, AutoregressiveConfig(lr=3e-3, warmup_steps=0, schedule="constant"))
    first = recipe.training_step(batch, 0, 0.0)
    for step in range(1, 60):
        last = recipe.training_step(batch, step, step / 60)
    assert last["loss/nll"] < 0.5 * first["loss/nll"]
    assert last["tokens/accuracy"] > first["tokens/accuracy"]
    assert not any(p.grad is not None and p.grad.any() for p in net.tokenizer.parameters())  # frozen


def test_the_gpt_trains_nothing_of_the_tokenizer() -> None:
    net = model()
    names = {n for n, _ in net.gpt.named_parameters()}
    assert names and not any(n.startswith("tokenizer") for n in names)
    assert len(list(net.parameters())) == len(list(net.tokenizer.parameters())) + len(list(net.gpt.parameters()))


# -- the whole model -----------------------------------------------------------------------------------


def test_a_staged_run_trains_both_stages_and_generates_its_own_multiplicities(registry, tmp_path: Path) -> None:
    sets = quick_overrides(24, **{"eval.num_jets": 60, "train.eval_every": 6}) + [f"model.{k}={json.dumps(v)}" for k, v in
                                                           SPEC.quick_config.items()] + [f'run_dir="{tmp_path}"']
    result = execute(load_config(None, sets, registry, plugin="omnijet"), registry, show_progress=False)
    assert result.completed and {"w1m", "w1p"} <= set(result.table.rows["omnijet"])
    trained = load_trained(result.run_dir, registry)
    own = trained.generate(40, seed=2)
    assert own.meta["multiplicity"] == "model" and own.points.shape == (40, 30, 3)
    from_data = trained.generate(40, seed=2, multiplicity="data")
    assert from_data.meta["multiplicity"] == "data"
    assert (own.points[~own.mask] == 0).all() and (own.points[..., 2][own.mask] > 0).all()  # pt_rel = exp(.)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    # held-out losses of each stage: the tokenizer's in its share of the run, the GPT's in its own
    assert {"validation/reconstruction", "validation/commitment", "validation/nll", "validation/tokens/accuracy"} <= scalars


def test_omnijet_builds_for_showers() -> None:
    net = model(n=40, features=SHOWER_FEATURES)
    assert net.gpt.ordering == SHOWER_FEATURES.index("E")
    x, mask = net.sample_with_multiplicity(3, 40)
    assert x.shape == (3, 40, 4) and (x[~mask] == 0).all()


@pytest.mark.parametrize("interrupt", [4, 14], ids=["in-tokenizer-stage", "in-gpt-stage"])
def test_an_interrupted_omnijet_run_resumes_exactly(registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     interrupt: int) -> None:
    from pcgen.runtime.checkpoint import load_checkpoint
    from pcgen.train.runner import resume_config
    from pcgen.train.staged import StagedRecipe

    def run(name: str):  # noqa: ANN202
        sets = quick_overrides(20, **{"model.replace_every": 3}) + [
            f"model.{k}={json.dumps(v)}" for k, v in SPEC.quick_config.items() if k != "replace_every"
        ] + [f'run_dir="{tmp_path}"', f'name="{name}"']
        return execute(load_config(None, sets, registry, plugin="omnijet"), registry, show_progress=False,
                       final_eval=False)

    straight = load_checkpoint(run("straight").run_dir)["model"]
    original, calls = StagedRecipe.training_step, {"n": 0}

    def flaky(self, batch, step, progress):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == interrupt:
            raise KeyboardInterrupt
        return original(self, batch, step, progress)

    monkeypatch.setattr(StagedRecipe, "training_step", flaky)
    cut = run("cut")
    assert not cut.completed
    monkeypatch.undo()
    result = execute(resume_config(cut.run_dir, [], registry), registry, run_dir=cut.run_dir, resume=True,
                     show_progress=False, final_eval=False)
    resumed = load_checkpoint(result.run_dir)["model"]
    assert result.completed and set(resumed) == set(straight)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_large_batches_are_generated_in_chunks_that_bound_the_cache() -> None:
    gpt = model(n=20).gpt.eval()
    gpt.config.cache_memory_mb = 1
    per_sequence = 2 * QUICK.num_blocks * 21 * QUICK.embed_dim * 4
    assert gpt.cache_chunk() == 2**20 // per_sequence
    lengths = torch.randint(0, 21, (gpt.cache_chunk() * 2 + 3,))
    tokens, mask = gpt.generate_tokens(len(lengths), lengths)
    assert tokens.shape == (len(lengths), 20) and torch.equal(mask.sum(1), lengths)


def test_categorical_sampling_by_the_cumulative_distribution_has_the_right_frequencies() -> None:
    from pcgen_omnijet.gpt import sample_categorical

    probs = torch.tensor([0.0, 0.1, 0.0, 0.6, 0.3, 0.0]).expand(200_000, 6)
    torch.manual_seed(3)
    drawn = sample_categorical(probs)
    freq = torch.bincount(drawn, minlength=6).double() / len(drawn)
    assert torch.allclose(freq, probs[0].double(), atol=4e-3)
    assert freq[[0, 2, 5]].sum() == 0  # zero-probability categories, also first and last, never come
    one_hot = torch.eye(6)[[5, 0, 3]]
    assert torch.equal(sample_categorical(one_hot), torch.tensor([5, 0, 3]))


def test_the_gpt_loss_at_target_positions_is_the_cross_entropy_over_all_positions() -> None:
    import torch.nn.functional as F
    from pcgen import IGNORE

    net = model()
    batch = clouds([4, 8, 12, 6])
    gpt = net.gpt.eval()
    tokens, targets = gpt.token_sequences(batch.x, batch.mask, batch.cond)
    valid = targets != IGNORE
    assert not valid.all()  # short clouds leave positions without a target
    full = gpt.next_token_logits(tokens)
    assert torch.allclose(gpt.next_token_logits_at(tokens, batch.cond, valid), full[valid], atol=1e-6)
    recipe = AutoregressiveRecipe(gpt, AutoregressiveConfig())
    losses, logs = recipe.losses(batch, 0)
    expected = F.cross_entropy(full.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
    assert torch.allclose(losses["nll"], expected, atol=1e-6)
    right = (full.argmax(-1) == targets) & valid
    assert torch.allclose(logs["tokens/accuracy"], right.sum() / valid.sum())
