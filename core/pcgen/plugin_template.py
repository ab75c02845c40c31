"""``pcgen new-plugin``: write a complete, installable model plugin that passes the contract as it comes.

The model it writes is small and real: conditional flow matching (an :class:`~pcgen.ObjectiveModel`)
with a permutation-equivariant DeepSets velocity field, sampled by Euler steps from Gaussian noise.
Replace its networks with yours; keep the shape of the package.

The files it writes live, as real files, in ``pcgen/plugin_template_files/`` (shipped with the package),
so that ruff checks the Python ones with the rest of the repository. They are a plugin named
``plugin-name``, spelt so that every Python file stays valid Python:

- ``pcgen_plugin_name`` (the package, in code, paths and text) becomes ``pcgen_NAME``;
- ``PluginName`` (the prefix of the class names) becomes the name in CamelCase;
- ``$name``, ``$dist`` and ``$contract``, only inside strings, comments and non-Python files, become
  the model name, the distribution name and :data:`~pcgen.CONTRACT_VERSION` (:class:`string.Template`);
- a ``.tmpl`` suffix is dropped (it keeps tools from taking ``pyproject.toml.tmpl`` for a project of
  its own inside pcgen).
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from pcgen.hookspecs import CONTRACT_VERSION


class TemplateError(ValueError):
    """The plugin cannot be written (bad name, folder not empty)."""


TEMPLATE_DIR = Path(__file__).with_name("plugin_template_files")
"""The template plugin's files."""

FILES = (
    "pyproject.toml.tmpl",
    "README.md",
    "pcgen_plugin_name/__init__.py",
    "pcgen_plugin_name/config.py",
    "pcgen_plugin_name/networks.py",
    "pcgen_plugin_name/plugin.py",
    "tests/test_pcgen_plugin_name.py",
)
"""The files written, as paths relative to :data:`TEMPLATE_DIR` (so that nothing else there, such as a
``__pycache__``, is copied)."""

PACKAGE = "pcgen_plugin_name"
"""How the templates spell the plugin's package."""
CLASS_PREFIX = "PluginName"
"""How the templates spell the prefix of the plugin's class names."""
SUFFIX = ".tmpl"
"""Dropped from a template's file name."""

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")


def render(text: str, package: str, cls: str, values: dict[str, str]) -> str:
    """A template's text for the plugin: placeholder identifiers replaced, then ``$``-placeholders."""
    return Template(text.replace(PACKAGE, package).replace(CLASS_PREFIX, cls)).substitute(values)


def write_plugin(name: str, folder: Path) -> Path:
    """Write the plugin ``name`` (distribution ``pcgen-NAME``, package ``pcgen_NAME``) into ``folder``."""
    if not NAME.match(name):
        raise TemplateError(f"plugin name {name!r} must start with a lower-case letter and hold only a-z, 0-9, '-', '_'")
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise TemplateError(f"{folder} exists and is not empty; choose another --dir")
    package = "pcgen_" + name.replace("-", "_")
    cls = "".join(part.capitalize() for part in re.split(r"[-_]", name))
    values = {"name": name, "dist": "pcgen-" + name.replace("_", "-"), "contract": CONTRACT_VERSION}
    for path in FILES:
        target = folder / path.replace(PACKAGE, package).removesuffix(SUFFIX)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render((TEMPLATE_DIR / path).read_text(), package, cls, values))
    return folder
