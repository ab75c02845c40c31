"""registry.toml and the installed entry points must agree."""

from __future__ import annotations

from pathlib import Path

from pcgen.plugins import discover_entry_points, read_catalogue

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = read_catalogue(ROOT / "registry.toml")


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
