"""The core's modules import downwards only: each sub-package or module has a layer, and no import
(lazy ones included; annotations under TYPE_CHECKING excepted) reaches a higher layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pcgen

CORE = Path(pcgen.__file__).parent

LAYERS: dict[str, float] = {
    # what everything may use
    "config": 0, "specs": 0, "hookspecs": 0, "suggest": 0, "safe_io": 0, "threads": 0, "cli_words": 0,
    "runtime": 1,       # checkpoints, non-finite checks, precision, CPU memory
    "data": 2,          # point clouds, files, generators, preprocessing, conditions
    "metrics": 3, "nn": 3,
    "models": 4,        # the model interfaces
    "sampling": 5, "plugins": 5,
    "pretrained": 5.5,  # shipped weights: rebuilt through sampling, used by training's init_weights
    "plots": 6, "train": 6,
    "kinds": 7,         # the core's kinds use data, metrics and plots
    "compare": 8, "leaderboard": 8, "builtin": 8,
    "cli": 9, "cli_plugin_kit": 9, "plugin_template": 9, "testing": 9, "__main__": 9, "__init__": 9,
}


def layer_of(module: str) -> float:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def upward_imports() -> list[str]:
    found = []
    for path in CORE.rglob("*.py"):
        if "plugin_template_files" in path.parts:
            continue
        module = ".".join(path.relative_to(CORE.parent).with_suffix("").parts)
        tree = ast.parse(path.read_text())
        annotations_only = {id(node) for block in ast.walk(tree)
                            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                            for node in ast.walk(block)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pcgen.") \
                    and id(node) not in annotations_only and layer_of(node.module) > layer_of(module):
                found.append(f"{module}:{node.lineno} imports {node.module}")
    return found


def test_every_core_module_has_a_layer() -> None:
    tops = {p.stem if p.is_file() else p.name for p in CORE.iterdir()
            if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert tops - set(LAYERS) == set(), "give the new module a layer in LAYERS"


def test_no_core_module_imports_a_higher_layer() -> None:
    assert upward_imports() == []
