"""The autoregressive recipe: next-token prediction with teacher forcing.

A model that writes each cloud as a token sequence (``start, t_1 ... t_n, stop``: a GPT over the
codes of a tokenizer, say) trains with it. The model supplies the input tokens and the target of
every position (:meth:`AutoregressiveModel.token_sequences`, with :data:`IGNORE` where no target
exists, e.g. after the stop token) and the logits of the next token at every position
(:meth:`AutoregressiveModel.next_token_logits_at`, at the positions that have a target). The loss is the cross-entropy per predicted token
(the NLL per token, optionally label-smoothed). Logged besides the loss: ``tokens/accuracy``
(greedy next-token accuracy), ``tokens/perplexity`` and ``tokens/per_cloud``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from pcgen.models import IGNORE, AutoregressiveModel
from pcgen.specs import RecipeSpec
from pcgen.train.objective import ObjectiveRecipe, OptimiserConfig
from pcgen.train.recipe import Batch, Logs

__all__ = ["AUTOREGRESSIVE", "IGNORE", "AutoregressiveConfig", "AutoregressiveModel", "AutoregressiveRecipe"]

class AutoregressiveConfig(OptimiserConfig):
    """Optimiser settings plus label smoothing of the next-token cross-entropy."""

    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy.")


class AutoregressiveRecipe(ObjectiveRecipe):
    """Cross-entropy of the next token at every position that has a target."""

    model_class = AutoregressiveModel
    model: AutoregressiveModel
    config: AutoregressiveConfig

    def losses(self, batch: Batch, step: int) -> tuple[dict[str, Tensor], Logs]:
        tokens, targets = self.model.token_sequences(batch.x, batch.mask, batch.cond)
        valid = targets != IGNORE
        logits = self.model.next_token_logits_at(tokens, batch.cond, valid)  # (K, V): positions with a target
        wanted = targets[valid]
        loss = F.cross_entropy(logits, wanted, label_smoothing=self.config.label_smoothing)
        with torch.no_grad():  # logged values, kept on the device (no host synchronisation here)
            accuracy = (logits.argmax(-1) == wanted).float().mean()
            nll = loss.detach() if self.config.label_smoothing == 0 else F.cross_entropy(logits, wanted)
        logs: Logs = {
            "tokens/accuracy": accuracy,
            "tokens/perplexity": nll.clamp_max(50.0).exp(),
            "tokens/per_cloud": valid.sum() / max(len(tokens), 1),
        }
        return {"nll": loss}, logs


AUTOREGRESSIVE = RecipeSpec(
    name="autoregressive",
    recipe_class=AutoregressiveRecipe,
    config_class=AutoregressiveConfig,
    description="Next-token prediction with teacher forcing (GPT-style models over token sequences): "
    "cross-entropy per token, accuracy and perplexity logged; warm-up + cosine.",
)
