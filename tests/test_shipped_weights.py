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


@pytest.fixture(scope="module")
def fresh_real_jets(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    """Fresh Pythia jets (seed 4242, which no card trained on) for every (jet type, N) of the shipped cards,
    made once for all models: as many as the largest reproduce block needs."""
    wanted: dict[tuple[str, int], int] = {}
    for _spec, weights in SHIPPED.values():
        card = read_card(weights)
        key = (card["data"]["recipe"]["jet_type"], int(card["data"]["recipe"]["num_particles"]))
        wanted[key] = max(wanted.get(key, 0), 2 * int(card["reproduce"]["jets"]))
    folder = tmp_path_factory.mktemp("fresh-real")
    files = {}
    for (jet_type, particles), jets in wanted.items():
        files[jet_type, particles] = folder / f"{jet_type}{particles}.h5"
        pcgen("data", "generate", "--jet-type", jet_type, "--particles", str(particles), "--jets", str(jets),
              "--seed", "4242", "--workers", "2", "--out", str(files[jet_type, particles]), "--quiet")
    return files


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_pretrained_sampling_reproduces_the_card(name: str, tmp_path: Path,
                                                 fresh_real_jets: dict[tuple[str, int], Path]) -> None:
    _spec, weights = SHIPPED[name]
    card = read_card(weights)
    recipe, reproduce = card["data"]["recipe"], card["reproduce"]
    jets = reproduce["jets"]
    real = fresh_real_jets[recipe["jet_type"], int(recipe["num_particles"])]
    samples, table = tmp_path / "samples.h5", tmp_path / "table.json"
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
