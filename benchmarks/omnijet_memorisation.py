"""Does OmniJet's GPT memorise its training jets? Next-token NLL on training jets, held-out jets and the
training jets reflected in eta_rel and phi_rel or rotated at random about the jet axis (the same jets as
the training set up to a symmetry of the data), for trained weights; and a figure of the validation NLL
of runs against their steps.

    .venv/bin/python benchmarks/omnijet_memorisation.py --weights omnijet-top30 RUN/checkpoints/best.pt \\
        --runs RUN_A RUN_B --figure docs/figures/omnijet_validation_nll.png --json out.json

A GPT that has learnt the distribution gives the four sets about the same NLL; one that memorised
its training set gives its training jets a far lower NLL than the others. The data are the cards'
50,000-jet Pythia top set (``data.num_jets=50000``), split and scaled as the runs were; ``--n`` jets
of each set.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from pcgen.config import load_config
from pcgen.models import IGNORE
from pcgen.plugins import load_registry
from pcgen.pretrained import load_pretrained, load_weights_file
from pcgen.sampling import load_trained
from pcgen.threads import configure_threads
from pcgen.train.augment import RandomReflection, RandomRotation
from pcgen.train.data_prep import load_clouds, prepare
from pcgen.train.recipe import Batch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trained_models import tensorboard_scalars  # noqa: E402


def token_nll(gpt: torch.nn.Module, batch: Batch) -> float:
    """Mean next-token NLL (nats per token) of ``batch`` under ``gpt`` (eval mode, no dropout)."""
    with torch.inference_mode():
        tokens, targets = gpt.token_sequences(batch.x, batch.mask, batch.cond)
        valid = targets != IGNORE
        logits = gpt.next_token_logits_at(tokens, batch.cond, valid)
        return float(F.cross_entropy(logits.float(), targets[valid]))


def load(source: str, registry: object) -> object:
    """Trained weights by name, a .safetensors file, or a run folder / checkpoint."""
    if Path(source).suffix == ".safetensors":
        return load_weights_file(Path(source), registry, "cpu")
    if Path(source).exists():
        return load_trained(Path(source), registry, "cpu")
    return load_pretrained(source, registry, "cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="*", default=[], help="weights names, .safetensors files or checkpoints")
    parser.add_argument("--runs", nargs="*", default=[], type=Path, help="run folders for the validation-NLL figure")
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--figure", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    configure_threads(0)
    registry = load_registry()
    resolved = load_config(None, ["data.num_jets=50000"], registry, plugin="omnijet")
    data = prepare(load_clouds(resolved, registry, progress=False), resolved, registry.model("omnijet"), resolved.kind)
    n = args.n
    training = Batch(data.x[:n], data.mask[:n], data.cond[:n])
    held_out = Batch(*data.model_space(data.test.subset(slice(0, n))))
    reflection = RandomReflection(["eta_rel", "phi_rel"], data.info.feature_names, data.scaler, seed=0)
    reflected = reflection.apply(training, torch.ones(n, 2, dtype=torch.bool))
    rotation = RandomRotation(["eta_rel", "phi_rel"], data.info.feature_names, data.scaler, seed=0)
    rotated = rotation.apply(training, rotation.angles(n, step=0))
    rows, start = {}, None
    validation = Batch(*data.model_space(data.test.subset(slice(0, 128))))  # the runs' validation batch
    for source in args.weights:
        gpt = load(source, registry).model.part("gpt").eval()  # type: ignore[attr-defined]
        rows[source] = {name: token_nll(gpt, batch) for name, batch in
                        (("training", training), ("held_out", held_out), ("training_reflected", reflected),
                                             ("training_rotated", rotated))}
        start = token_nll(gpt, validation) if start is None else start  # the first weights: where the runs began
        print(f"{source}: NLL per token, training {rows[source]['training']:.3f}, held-out "
              f"{rows[source]['held_out']:.3f}, training reflected {rows[source]['training_reflected']:.3f}, "
              f"training rotated {rows[source]['training_rotated']:.3f}", flush=True)
    curves = {run.name: tensorboard_scalars(run, lambda tag: tag == "validation/nll").get("validation/nll", [])
              for run in args.runs}
    if args.figure and curves:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 4))
        for name, values in curves.items():
            ax.plot([s for s, _ in values], [v for _, v in values], marker="o", ms=3, label=name)
        if start is not None:
            ax.axhline(start, color="k", ls="--", lw=1, label=f"{Path(args.weights[0]).stem} (step 0: where the runs began)")
        ax.set_xlabel("steps from the shipped weights")
        ax.set_ylabel("validation NLL per token (128 held-out jets)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=120)
    if args.json:
        args.json.write_text(json.dumps({"n": n, "nll": rows, "validation_start": start, "validation_curves": curves}, indent=2) + "\n")


if __name__ == "__main__":
    main()
