"""The likelihood recipe: maximum-likelihood training of models with a tractable density.

Any model exposing ``log_prob(x, mask, cond) -> (B,)`` trains with it: a normalising flow over
whole jets, an autoregressive model over particles or tokens, a VAE's bound. The loss is the
negative log-likelihood per dimension, ``-sum_b log p(x_b) / sum_b dims_b``, where
:meth:`LikelihoodModel.log_prob_dims` says how many dimensions each cloud's density spans
(default 1: the NLL per cloud). A step whose loss or gradient is not finite changes nothing; the
trainer then stops the run or counts it (``train.on_nonfinite``, ``train.max_nonfinite_in_row``).
"""

from __future__ import annotations

from torch import Tensor

from pcgen.models import LikelihoodModel
from pcgen.specs import RecipeSpec
from pcgen.train.objective import ObjectiveRecipe, OptimiserConfig
from pcgen.train.recipe import Batch, Logs

__all__ = ["LIKELIHOOD", "LikelihoodConfig", "LikelihoodModel", "LikelihoodRecipe"]


class LikelihoodConfig(OptimiserConfig):
    """Settings of maximum-likelihood training; a model plugin supplies its paper's values as defaults."""


class LikelihoodRecipe(ObjectiveRecipe):
    """One optimiser over all of the model's trainable parameters; loss = NLL per dimension.

    Logs ``loss/nll`` (per dimension, the quantity minimised), ``nll/per_cloud`` and
    ``grad_norm/model``.
    """

    model_class = LikelihoodModel
    model: LikelihoodModel
    config: LikelihoodConfig

    def losses(self, batch: Batch, step: int) -> tuple[dict[str, Tensor], Logs]:
        log_prob = self.model.log_prob(batch.x, batch.mask, batch.cond)
        dims = self.model.log_prob_dims(batch.mask).to(log_prob)
        nll = -log_prob.sum() / dims.sum()
        return {"nll": nll}, {"nll/per_cloud": -log_prob.detach().mean()}


LIKELIHOOD = RecipeSpec(
    name="likelihood",
    recipe_class=LikelihoodRecipe,
    config_class=LikelihoodConfig,
    description="Maximum likelihood (flows, autoregressive models): NLL per dimension; Adam/AdamW/RMSprop; "
    "warm-up + cosine; gradient clipping; non-finite steps skipped.",
)
