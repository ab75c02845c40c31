"""Shipped trained weights: their card is complete and `pcgen sample --pretrained` then `pcgen eval`
reproduces the card's metrics within their errors (on 1,000 jets, against fresh Pythia jets made
with the card's data recipe and another seed)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from pcgen.plugins import load_registry
from pcgen.pretrained import available, read_card, resolve_location, sha256_of

REGISTRY = load_registry()
SHIPPED = {weights.name: (spec, weights) for spec, weights in available(REGISTRY)}
CARD_FIELDS = {"name", "model", "sha256", "config", "data", "hardware", "training_minutes", "metrics", "reproduce"}


def pcgen(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pcgen.cli", *args], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_at_least_one_model_ships_weights() -> None:
    assert SHIPPED, "no installed plugin ships trained weights (epic-fm should: run scripts/setup.sh)"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_card_is_complete_and_the_checksum_matches(name: str) -> None:
    spec, weights = SHIPPED[name]
    card = read_card(weights)
    assert CARD_FIELDS <= set(card), CARD_FIELDS - set(card)
    assert card["model"] == spec.name and card["config"]["plugin"] == spec.name
    assert sha256_of(resolve_location(weights.location)) == weights.sha256 == card["sha256"]
    assert len(card["data"]["fingerprint"]) == 16
    for metric, entry in card["metrics"].items():
        assert set(entry) == {"model", "truth"}, metric


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_pretrained_sampling_reproduces_the_card(name: str, tmp_path: Path) -> None:
    _spec, weights = SHIPPED[name]
    card = read_card(weights)
    recipe, reproduce = card["data"]["recipe"], card["reproduce"]
    jets = reproduce["jets"]
    real, samples, table = tmp_path / "real.h5", tmp_path / "samples.h5", tmp_path / "table.json"
    pcgen("data", "generate", "--jet-type", recipe["jet_type"], "--particles", str(recipe["num_particles"]),
          "--jets", str(2 * jets), "--seed", "4242", "--workers", "2", "--out", str(real), "--quiet")
    pcgen("sample", "--pretrained", name, "--n", str(jets), "--out", str(samples), "--device", "cpu")
    pcgen("eval", "--samples", str(samples), "--reference", str(real), "--n", str(jets), "--no-efp",
          "--json", str(table))
    rows = json.loads(table.read_text())["rows"]
    model_row = next(row for key, row in rows.items() if key != "truth")
    for metric, scale in (("w1m", 1e3), ("w1p", 1e3)):
        value = model_row[metric][0] * scale
        expected, spread = reproduce["model"][metric]
        truth_spread = reproduce["truth"][metric][1]
        tolerance = 3 * math.hypot(spread, truth_spread)
        assert abs(value - expected) <= tolerance, (metric, value, expected, tolerance)
