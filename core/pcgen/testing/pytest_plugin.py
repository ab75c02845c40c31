"""The ``pcgen`` pytest plugin (entry point ``pytest11``): ``pytest --pcgen-model NAME`` runs the model
contract (:mod:`pcgen.testing.contract`) against an installed model, from any folder.

Fixtures: ``pcgen_registry`` (installed plugins plus the ``toy`` data set), ``pcgen_spec`` (the
:class:`~pcgen.specs.ModelSpec` under test; one test per selected model) and ``pcgen_particles``
(30 and 150 particles per cloud). Without ``--pcgen-model`` nothing is added to a test session;
a test module that imports the contract's tests then runs them for every installed model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pcgen.plugins import PluginError, Registry

REGISTRY_KEY = pytest.StashKey[Registry]()


def contract_path() -> Path:
    """The file holding the contract's tests."""
    from pcgen.testing import contract

    return Path(contract.__file__).resolve()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pcgen", "pcgen model contract")
    group.addoption(
        "--pcgen-model", action="append", default=[], metavar="NAME",
        help="Run pcgen's model contract against the installed model NAME (repeatable).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pcgen_contract: a test of pcgen's model contract")
    if config.getoption("pcgen_model"):
        path = contract_path()
        if all(Path(arg.split("::")[0]).resolve() != path for arg in config.args):
            config.args.append(str(path))


def registry_of(config: pytest.Config) -> Registry:
    """The session's registry: installed plugins plus the toy data set (loaded once)."""
    if REGISTRY_KEY not in config.stash:
        from pcgen.plugins import load_registry
        from pcgen.testing.toydata import ToyDataPlugin

        config.stash[REGISTRY_KEY] = load_registry(extra_plugins=[ToyDataPlugin()])
    return config.stash[REGISTRY_KEY]


def selected_models(config: pytest.Config) -> list[str]:
    """The models ``--pcgen-model`` names (checked to exist), or every installed one."""
    registry = registry_of(config)
    given = [n.strip() for arg in config.getoption("pcgen_model") for n in arg.split(",") if n.strip()]
    names = list(dict.fromkeys(given))  # once each, e.g. from a pyproject's addopts and the command line
    for name in names:
        try:
            registry.model(name)
        except PluginError as err:
            raise pytest.UsageError(f"--pcgen-model {name}: {err}") from None
    return names or sorted(registry.models)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pcgen_spec" in metafunc.fixturenames:
        names = selected_models(metafunc.config)
        metafunc.parametrize("pcgen_spec", names, indirect=True, ids=names)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run each contract test once per parameter set, when both a repository's test module and
    ``--pcgen-model`` bring it in; mark contract tests."""
    seen: set[tuple[object, str]] = set()
    kept = []
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and getattr(function, "__module__", "") == "pcgen.testing.contract":
            key = (function, getattr(getattr(item, "callspec", None), "id", ""))
            if key in seen:
                continue
            seen.add(key)
            item.add_marker("pcgen_contract")
        kept.append(item)
    items[:] = kept


@pytest.fixture(scope="session")
def pcgen_registry(request: pytest.FixtureRequest) -> Registry:
    """Installed plugins plus the ``toy`` data set."""
    return registry_of(request.config)


@pytest.fixture
def pcgen_spec(request: pytest.FixtureRequest, pcgen_registry: Registry):
    """The spec of the model under test (parametrised over the selected models)."""
    if not hasattr(request, "param"):
        pytest.skip("no model selected")
    return pcgen_registry.model(request.param)


@pytest.fixture(params=[30, 150], ids=lambda n: f"N{n}")
def pcgen_particles(request: pytest.FixtureRequest) -> int:
    """The two JetNet sizes: 30 and 150 particles per jet."""
    return request.param
