"""Shared fixtures: toy jets, a registry with a toy data set, quick run configs, plugins laid out as installed."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# Tiny tensors: one thread is fastest, and OpenMP threads spinning against a busy machine are not.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # CLI subprocesses: OpenMP threads sleep while waiting

from pcgen.plugins import Registry, load_registry  # noqa: E402
from pcgen.threads import configure_threads  # noqa: E402

configure_threads(1)  # one torch thread, and generation in this process (test_generation_workers forks)
from pcgen.testing import ToyDataPlugin, quick_overrides, toy_jets  # noqa: E402, F401 - shared with the tests


@pytest.fixture(scope="session")
def registry() -> Registry:
    """Installed plugins plus the toy data set."""
    return load_registry(extra_plugins=[ToyDataPlugin()])


def write_plugin_distribution(site: Path, module: str, text: str, dist: str, version: str, entry_point: str) -> None:
    """Lay a plugin out as pip would: ``module.py`` holding ``text`` and a ``.dist-info`` for ``dist``
    ``version`` that declares it as pcgen plugin ``entry_point``."""
    (site / f"{module}.py").write_text(textwrap.dedent(text))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[pcgen.plugins]\n{entry_point} = {module}\n")


@contextmanager
def installed_plugin(site: Path, monkeypatch: pytest.MonkeyPatch, module: str, text: str, name: str) -> Iterator[None]:
    """Within the block, plugin ``name`` (module ``module`` holding ``text``, distribution ``pcgen-<name>``)
    is installed on ``site`` and the process's registry is loaded afresh; afterwards both are forgotten."""
    import pcgen.plugins

    write_plugin_distribution(site, module, text, f"pcgen-{name}", "0.1.0", name)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(pcgen.plugins, "_REGISTRY", None)
    try:
        yield
    finally:
        sys.modules.pop(module, None)
        pcgen.plugins._REGISTRY = None


def assert_refused_before_run_folder(registry: Registry, tmp_path: Path, setting: str, message: str) -> None:
    """A quick igapt run with ``setting`` stops with a ConfigError matching ``message`` before making any folder."""
    from pcgen.config import ConfigError, load_config
    from pcgen.train.runner import execute

    cfg = load_config(None, quick_overrides(2) + ['name="bad"', f'run_dir="{tmp_path}"', setting], registry,
                      plugin="igapt")
    with pytest.raises(ConfigError, match=message):
        execute(cfg, registry, show_progress=False, final_eval=False)
    assert not any(tmp_path.iterdir())
