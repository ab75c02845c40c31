"""The adversarial recipe: a generator and a critic trained against each other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from pcgen.data.preprocessing import FeatureScaler
from pcgen.models import AdversarialModel
from pcgen.specs import RecipeSpec
from pcgen.train.losses import critic_loss, generator_loss, gradient_penalty, r1_penalty
from pcgen.train.observable_matching import ObservableMatching
from pcgen.train.recipe import Batch, Logs, Recipe, clip_gradients, make_optimizer, warmup_cosine


class AdversarialConfig(BaseModel):
    """Settings of adversarial training; a model plugin supplies its paper's values as defaults."""

    model_config = ConfigDict(extra="forbid")

    loss: Literal["ls", "vanilla", "wgan-gp"] = Field("ls", description="LSGAN, non-saturating GAN or WGAN-GP.")
    optimizer: Literal["rmsprop", "adam", "adamw"] = Field("rmsprop")
    lr_generator: float = Field(1e-4, gt=0, description="Peak learning rate of the generator.")
    lr_critic: float = Field(1e-4, gt=0, description="Peak learning rate of the critic (two time-scale rule).")
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam/AdamW betas.")
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(100, ge=0, description="Linear warm-up steps before the cosine decay.")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="Decay after warm-up.")
    cosine_cycles: int = Field(1, ge=1, description="Number of cosine cycles over the run.")
    min_lr_fraction: float = Field(0.0, ge=0, le=1, description="Floor of the cosine, as a fraction of the peak.")
    critic_steps: int = Field(1, ge=1, description="Critic updates per generator update.")
    gp_weight: float = Field(10.0, ge=0, description="Gradient-penalty weight (wgan-gp only).")
    r1_weight: float = Field(
        0.0, ge=0,
        description="Weight gamma of the zero-centred R1 penalty (gamma/2)||grad_x D(real)||^2 on the critic, any loss; "
        "0 = none, as in the papers.",
    )
    r1_every: int = Field(
        4, ge=1, description="Apply the R1 penalty every this many steps, scaled up by as much (lazy regularisation)."
    )
    grad_clip: float | None = Field(None, gt=0, description="Clip gradient norms to this value.")
    ema_decay: float = Field(
        0.999, ge=0, lt=1,
        description="Decay of the exponential moving average of the generator's weights that sampling, in-training "
        "evaluation and the best checkpoint use (warmed up as min(decay, (1+k)/(10+k))); 0 = none, as in the papers.",
    )

    match: dict[str, float] = Field(
        default_factory=dict,
        description="Observable -> weight: add weight x W1(generated, real) / std(real) of each to the generator's "
        "loss, per batch in physical units ('mass': jet mass over pT; a feature name, e.g. 'pt_rel': its particle "
        "distribution); empty = none, as in the papers (pcgen.train.observable_matching).",
    )

    @property
    def differentiates_critic_twice(self) -> bool:
        """Whether a penalty on the critic's input gradient (WGAN-GP or R1) is on, so that the critic must
        allow a double backward (no compilation, no fused attention)."""
        return self.loss == "wgan-gp" or self.r1_weight > 0


class AdversarialRecipe(Recipe):
    """One critic update every step, one generator update every ``critic_steps`` steps, each followed by
    an update of the generator's weight average (``ema_decay``) from which the model then samples.

    Generated clouds reuse the real batch's masks and conditions, so the critic compares clouds
    of equal multiplicity; losses are computed on raw critic scores.
    """

    model: AdversarialModel
    config: AdversarialConfig

    def __init__(self, model: AdversarialModel, config: AdversarialConfig) -> None:
        super().__init__(model, config)
        if not isinstance(model, AdversarialModel):
            raise TypeError("the adversarial recipe needs an AdversarialModel (generator + critic)")
        c = config
        self.optimizers = {
            "generator": make_optimizer(c.optimizer, model.generator.parameters(), c.lr_generator, c.betas, 0.0),
            "critic": make_optimizer(c.optimizer, model.critic.parameters(), c.lr_critic, c.betas, c.weight_decay),
        }
        self.base_lrs = {"generator": c.lr_generator, "critic": c.lr_critic}
        self.matching: ObservableMatching | None = None

    def bind_data(self, feature_names: Sequence[str], scaler: FeatureScaler) -> None:
        if self.config.match:
            self.matching = ObservableMatching(self.config.match, feature_names, scaler)

    def training_step(self, batch: Batch, step: int, progress: float) -> Logs:
        c = self.config
        if c.match and self.matching is None:
            raise RuntimeError("recipe.match is set but the recipe was never told the data: call "
                               "bind_data(feature_names, scaler) before training")
        factor = warmup_cosine(step, progress if c.schedule == "cosine" else 0.0, c.warmup_steps, c.min_lr_fraction,
                               c.cosine_cycles)
        self.set_learning_rates(factor)
        gen, critic = self.model.generator, self.model.critic
        mask, cond = batch.mask, batch.cond
        weights = mask.unsqueeze(-1).to(batch.x.dtype)

        fake = gen(mask, cond) * weights
        real_score = critic(batch.x, mask, cond)
        fake_score = critic(fake.detach(), mask, cond)
        loss_c = critic_loss(c.loss, real_score, fake_score)
        logs: Logs = {"loss/critic": loss_c.detach()}
        if c.loss == "wgan-gp" and c.gp_weight > 0:
            gp = gradient_penalty(lambda x: critic(x, mask, cond), batch.x, fake.detach(), mask)
            loss_c = loss_c + c.gp_weight * gp
            logs["loss/gradient_penalty"] = gp.detach()
        if c.r1_weight > 0 and (step + 1) % c.r1_every == 0:  # on the trainer's logged (1-based) steps
            r1 = r1_penalty(lambda x: critic(x, mask, cond), batch.x, mask)
            loss_c = loss_c + 0.5 * c.r1_weight * c.r1_every * r1
            logs["loss/r1"] = r1.detach()
        self._update("critic", critic, loss_c, logs)

        if step % c.critic_steps == 0:
            for p in critic.parameters():
                p.requires_grad_(False)
            loss_g = generator_loss(c.loss, critic(fake, mask, cond))
            logs["loss/generator"] = loss_g.detach()
            for name, term in self._generator_terms(batch, fake, step).items():
                logs[f"loss/{name}"] = term.detach()
                loss_g = loss_g + term
            for p in critic.parameters():
                p.requires_grad_(True)
            self._update("generator", gen, loss_g, logs)
            if c.ema_decay > 0:
                logs["ema/decay"] = self.model.update_generator_average(c.ema_decay)
        logs["score/real"] = real_score.detach().mean()
        logs["score/fake"] = fake_score.detach().mean()
        return logs

    def _generator_terms(self, batch: Batch, fake: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """The model's own generator terms and the observable-matching ones (``recipe.match``)."""
        terms = self.model.generator_extra_losses(batch, fake, step)
        if self.matching is not None:
            terms = {**terms, **self.matching.losses(batch.x, fake, batch.mask)}
        return terms

    def _update(self, name: str, module: torch.nn.Module, loss: torch.Tensor, logs: Logs) -> None:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        self.synchronise_gradients(module)
        logs[f"grad_norm/{name}"] = clip_gradients(module, self.config.grad_clip)
        opt.step()


ADVERSARIAL = RecipeSpec(
    name="adversarial",
    recipe_class=AdversarialRecipe,
    config_class=AdversarialConfig,
    description="GAN training: LSGAN, vanilla or WGAN-GP; optional R1 penalty and observable matching; RMSprop/Adam; two time-scale rates; "
    "warm-up + cosine.",
)
