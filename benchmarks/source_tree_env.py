"""Make the source tree's packages (pcgen and every plugin under ``plugins/``) findable with their entry
points on a machine that has torch but not the project's virtual environment (a lent GPU image).

It writes a minimal ``*.dist-info`` (METADATA and entry_points.txt, read from each ``pyproject.toml``)
per package into SITE; with SITE, ``core`` and each plugin folder on ``PYTHONPATH``, pluggy discovers
the plugins through their entry points exactly as after ``pip install -e``:

    python3 benchmarks/source_tree_env.py /tmp/pcgen-site      # prints the PYTHONPATH to export
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_dist_info(pyproject: Path, site: Path) -> Path:
    """The ``dist-info`` folder of the package that ``pyproject`` describes, in ``site``."""
    project = tomllib.loads(pyproject.read_text())["project"]
    name, version = project["name"], project["version"]
    folder = site / f"{re.sub(r'[-_.]+', '_', name)}-{version}.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    requires = "".join(f"Requires-Dist: {r}\n" for r in project.get("dependencies", []))
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires}")
    groups = dict(project.get("entry-points", {}))
    if project.get("scripts"):
        groups["console_scripts"] = project["scripts"]
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in entries.items()) + "\n"
        for group, entries in groups.items()
    )
    (folder / "entry_points.txt").write_text(entry_points)
    (folder / "top_level.txt").write_text("")
    return folder


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python3 benchmarks/source_tree_env.py SITE_FOLDER")
    site = Path(sys.argv[1])
    projects = [ROOT / "core" / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml"))]
    for pyproject in projects:
        write_dist_info(pyproject, site)
    print(":".join([str(site), *(str(p.parent) for p in projects)]))


if __name__ == "__main__":
    main()
