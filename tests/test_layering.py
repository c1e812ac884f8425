"""The layering rule, checked on every module of rtpose/ by parsing its imports (ast).

Layers run from the bottom up; a module may import from its own package (its "unit", e.g. all of
``rtpose.ops``) and from units in lower layers only, never from a unit in the same layer or above.
Imports inside functions and under ``TYPE_CHECKING`` count: an import circle hidden in a function
is still a circle. Separately, no set of modules may import each other in a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "rtpose"

# The layer order, written once. Each inner list is one layer; the first layer is the lowest.
# A unit is a top-level module of rtpose or a sub-package (everything below rtpose.X).
LAYERS: list[list[str]] = [
    [
        "rtpose.errors",
        "rtpose._deps",
        "rtpose._native",
        "rtpose._io",
        "rtpose._version",
        "rtpose._cpu",
    ],
    ["rtpose.skeletons", "rtpose.geometry", "rtpose.assets"],
    ["rtpose.cuda"],
    ["rtpose.ops"],
    ["rtpose.video", "rtpose.codecs"],
    ["rtpose.models"],
    ["rtpose.backends"],
    ["rtpose.estimators"],
    ["rtpose.track", "rtpose.viz"],
    ["rtpose.deploy"],
    ["rtpose.pipeline"],
    ["rtpose.bench"],
    ["rtpose.cli"],
    ["rtpose"],  # the package's own __init__: the lazy public API, above everything
]
LAYER_OF = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def collect_modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports_of(path: Path, module: str, known: set[str]) -> list[tuple[str, int]]:
    """Every rtpose module ``path`` imports (at any depth in the file), with its line number."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # `from pkg import submodule` depends on the submodule, not on pkg/__init__
                found.append((sub if sub in known else base, node.lineno))
    return [(name, line) for name, line in found if name == "rtpose" or name.startswith("rtpose.")]


def import_graph(root: Path) -> dict[str, list[tuple[str, int]]]:
    modules = collect_modules(root)
    known = set(modules)
    return {m: imports_of(p, m, known) for m, p in modules.items()}


def layer_violations(graph: dict[str, list[tuple[str, int]]]) -> list[str]:
    problems = []
    for module, targets in graph.items():
        src = unit_of(module)
        if src not in LAYER_OF:
            problems.append(f"{module}: unit {src} has no layer in tests/test_layering.py LAYERS")
            continue
        for target, line in targets:
            dst = unit_of(target)
            if dst == src:
                continue
            if dst not in LAYER_OF:
                problems.append(f"{module}:{line} imports {target}, whose unit has no layer")
            elif LAYER_OF[dst] >= LAYER_OF[src]:
                problems.append(
                    f"{module}:{line} imports {target}: layer {LAYER_OF[dst]} ({dst}) is not "
                    f"below layer {LAYER_OF[src]} ({src})"
                )
    return problems


def import_cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), plus self-imports."""
    edges = {m: sorted({t for t, _ in ts if t in graph and t != m}) for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def test_every_unit_has_a_layer():
    units = {unit_of(m) for m in collect_modules(PACKAGE_DIR)}
    assert units <= set(LAYER_OF), f"add these to LAYERS: {sorted(units - set(LAYER_OF))}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    problems = layer_violations(import_graph(PACKAGE_DIR))
    assert not problems, "imports that run up (or across) the layers:\n" + "\n".join(problems)


def test_no_import_circles():
    cycles = import_cycles(import_graph(PACKAGE_DIR))
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


# The checker itself is checked on a planted package, so a broken parser cannot pass silently.


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "rtpose"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_planted_back_import_inside_a_function_is_found(tmp_path):
    root = _plant(
        tmp_path,
        {
            "__init__.py": "",
            "ops/__init__.py": "",
            "ops/affine.py": "def f():\n    from rtpose.pipeline.stream import X\n",
            "pipeline/__init__.py": "",
            "pipeline/stream.py": "from rtpose.ops import affine\n",
        },
    )
    problems = layer_violations(import_graph(root))
    assert (
        len(problems) == 1 and "rtpose.ops.affine:2 imports rtpose.pipeline.stream" in problems[0]
    )
    assert import_cycles(import_graph(root)) == [["rtpose.ops.affine", "rtpose.pipeline.stream"]]


def test_a_planted_circle_inside_one_package_is_found(tmp_path):
    root = _plant(
        tmp_path,
        {
            "__init__.py": "",
            "deploy/__init__.py": "",
            "deploy/a.py": "from . import b\n",
            "deploy/b.py": "from .c import thing\n",
            "deploy/c.py": (
                "import typing\nif typing.TYPE_CHECKING:\n    from rtpose.deploy.a import A\n"
            ),
        },
    )
    graph = import_graph(root)
    assert not layer_violations(graph)
    assert import_cycles(graph) == [["rtpose.deploy.a", "rtpose.deploy.b", "rtpose.deploy.c"]]


@pytest.mark.parametrize(
    ("importer", "target", "ok"),
    [
        ("rtpose.pipeline.stream", "rtpose.estimators.top_down", True),
        ("rtpose.estimators.top_down", "rtpose.pipeline.loading", False),
        ("rtpose.video.opencv", "rtpose.codecs.yolo", False),  # same layer, other unit
        ("rtpose.cli.bench", "rtpose", False),  # the package __init__ is the top
    ],
)
def test_layer_rule_examples(importer, target, ok):
    assert (not layer_violations({importer: [(target, 1)]})) is ok
