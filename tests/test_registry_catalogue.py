"""registry.toml, its copy shipped inside the core, and the installed entry points must agree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pcgen.cli import app
from pcgen.plugins import discover_entry_points, find_catalogue, read_catalogue
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = read_catalogue(ROOT / "registry.toml")
SHIPPED = ROOT / "core" / "pcgen" / "registry.toml"


def test_every_installed_plugin_is_catalogued_with_its_entry_point() -> None:
    installed = {ep.name: ep for ep in discover_entry_points()}
    assert installed, "no pcgen plugin is installed: run scripts/setup.sh"
    for name, ep in installed.items():
        assert name in CATALOGUE, f"installed plugin '{name}' is missing from registry.toml"
        entry = CATALOGUE[name]
        assert entry["entry_point"] == ep.value, f"registry.toml says {entry['entry_point']} for {name}, installed {ep.value}"
        assert ep.dist is not None and ep.dist.metadata["Name"] == entry["distribution"]


def test_every_available_catalogue_entry_is_installed_and_has_its_source() -> None:
    installed = {ep.name for ep in discover_entry_points()}
    for name, entry in CATALOGUE.items():
        assert {"distribution", "entry_point", "path", "paper", "status"} <= set(entry), name
        if entry["status"] == "available":
            assert name in installed, f"registry.toml marks '{name}' available but it is not installed"
            assert (ROOT / entry["path"] / "pyproject.toml").is_file()


def test_the_core_ships_an_identical_copy_of_registry_toml() -> None:
    assert SHIPPED.read_text() == (ROOT / "registry.toml").read_text(), (
        "core/pcgen/registry.toml differs from registry.toml (the source of truth): cp registry.toml core/pcgen/")


def test_pcgen_plugins_shows_the_catalogue_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pcgen.cli
    from rich.console import Console

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PCGEN_REGISTRY", raising=False)
    monkeypatch.setattr(pcgen.plugins, "_REGISTRY", None)
    monkeypatch.setattr(pcgen.cli, "out", Console(width=400))
    assert find_catalogue() is not None and find_catalogue().resolve() == SHIPPED.resolve()
    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 0
    for name in CATALOGUE:
        assert name in result.output
    monkeypatch.setattr(pcgen.plugins, "_REGISTRY", None)


def test_building_the_core_leaves_its_source_tree_clean_and_ships_the_catalogue(tmp_path: Path) -> None:
    before = sorted(p.name for p in (ROOT / "core").iterdir())
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(ROOT / "core")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in (ROOT / "core").iterdir()) == before  # no build/, no *.egg-info
    (wheel,) = tmp_path.glob("pcgen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pcgen/registry.toml" in names and "pcgen/testing/contract.py" in names
