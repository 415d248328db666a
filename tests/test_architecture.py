"""House rules checked on the source: no import cycles, no private names across modules,
no module over 400 lines.

The import graph is read with ``ast`` from every module under ``leafnet/``; nothing is
imported. Its rules:

* Every ``import`` / ``from ... import`` of a ``leafnet`` module counts, at module level and
  inside functions alike (a function-level import hides a cycle, it does not remove it).
  Relative imports are resolved against the importing module. Imports under
  ``if TYPE_CHECKING:`` never run and are left out.
* ``from pkg import name`` is an import of ``pkg.name`` when that is a module, else of ``pkg``.
* Importing ``a.b.c`` runs the ``__init__`` of ``a`` and ``a.b`` first, so it is also an
  import of those packages, except the packages the importer itself lives in: they are
  already being imported when the importer runs. So a package ``__init__`` that imports its
  own submodules is no cycle, but a submodule that imports a name from its package's
  ``__init__`` (``from leafnet.explain import x``) while that ``__init__`` imports it back is.

The allow-lists (``KNOWN_*``) hold what other parts of the restructure are still fixing; they
are to be emptied, and a test fails on anything not in them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "leafnet"
MAX_LINES = 400

# to be emptied: cycles (as the set of modules of a strongly connected component) still being removed
KNOWN_CYCLES: list[set[str]] = [
]

# to be emptied: "importer: module.name" of private names still imported across modules
KNOWN_PRIVATE: list[str] = []

# to be emptied: modules over MAX_LINES and their line counts today; they may only shrink
KNOWN_LARGE: dict[str, int] = {
}


# ------------------------------------------------------------------ reading the sources

def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package``."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imports_of(name: str, modules: dict[str, Path]) -> list[tuple[ast.stmt, str, list[str]]]:
    """``(node, base module, imported names)`` for each leafnet import in module ``name``;
    for ``import a.b`` the names are empty."""
    tree = ast.parse(modules[name].read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node, a.name, []) for a in node.names if a.name.split(".")[0] == "leafnet"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] == "leafnet":
                out.append((node, base, [a.name for a in node.names]))
    return out


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module -> the leafnet modules it imports (see the rules in this file's docstring)."""
    modules = module_files() if modules is None else modules
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name in modules:
        own = set(_ancestors(name)) | {name}
        for _, base, names in imports_of(name, modules):
            targets = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
            if not names or len(targets) < len(names):
                targets.append(base)
            for target in targets:
                while target not in modules and "." in target:  # import a.b.attr
                    target = target.rpartition(".")[0]
                for t in _ancestors(target) + [target]:
                    if t in modules and t != name and (t == target or t not in own):
                        graph[name].add(t)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan), each a set."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def one_cycle(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """A shortest cycle through the first module (sorted) of a strongly connected component."""
    start = min(comp)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & comp):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise AssertionError(f"{comp} is not strongly connected")


def describe_cycles(graph: dict[str, set[str]], comps: list[set[str]]) -> str:
    return "\n".join(" -> ".join(one_cycle(graph, c)) + f"   (component: {', '.join(sorted(c))})"
                     for c in comps)


def private_imports(modules: dict[str, Path] | None = None) -> list[str]:
    """``"importer: module.name"`` for every private name (leading underscore, not a dunder)
    one leafnet module takes from another: ``from m import _x``, or ``m._x`` on an imported
    module ``m``."""
    modules = module_files() if modules is None else modules
    out = set()
    for name in modules:
        tree = ast.parse(modules[name].read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}  # local name -> leafnet module
        for node, base, names in imports_of(name, modules):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == base and a.asname:
                        aliases[a.asname] = base
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in modules:
                    aliases[a.asname or a.name] = sub
                elif a.name.startswith("_") and not a.name.endswith("__") and base != name:
                    out.add(f"{name}: {base}.{a.name}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.endswith("__") and aliases[node.value.id] != name):
                out.add(f"{name}: {aliases[node.value.id]}.{node.attr}")
    return sorted(out)


def line_counts(package: Path = PACKAGE) -> dict[str, int]:
    """Repository-relative path -> line count (as ``wc -l``) of every module."""
    return {p.relative_to(package.parent).as_posix(): p.read_bytes().count(b"\n")
            for p in sorted(package.rglob("*.py"))}


# ------------------------------------------------------------------ the rules

def test_no_import_cycles():
    graph = import_graph()
    known = [frozenset(c) for c in KNOWN_CYCLES]
    new = [c for c in strongly_connected(graph) if frozenset(c) not in known]
    assert not new, "import cycles (a cycle may be part of a larger component):\n" + describe_cycles(graph, new)


def test_no_private_imports_across_modules():
    new = [p for p in private_imports() if p not in KNOWN_PRIVATE]
    assert not new, ("private names imported from another module (make them public, with a docstring):\n"
                     + "\n".join(new))


def test_no_module_over_max_lines():
    grown = [f"{path}: {n} lines (allowed {KNOWN_LARGE.get(path, MAX_LINES)})"
             for path, n in line_counts().items() if n > KNOWN_LARGE.get(path, MAX_LINES)]
    assert not grown, f"modules over {MAX_LINES} lines, or grown past their count in KNOWN_LARGE:\n" + "\n".join(grown)


# ------------------------------------------------------------------ the checks themselves

def _fake_package(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        p = tmp_path / "leafnet" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return module_files(tmp_path / "leafnet")


def test_cycle_through_function_level_and_relative_imports_is_found(tmp_path):
    modules = _fake_package(tmp_path, {
        "__init__.py": "", "m/__init__.py": "",
        "m/a.py": "def f():\n    from leafnet.m import b\n",
        "m/b.py": "from .a import f\n",
        "m/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from leafnet.m.a import f\n",
    })
    graph = import_graph(modules)
    assert strongly_connected(graph) == [{"leafnet.m.a", "leafnet.m.b"}]
    assert describe_cycles(graph, strongly_connected(graph)).startswith("leafnet.m.a -> leafnet.m.b -> leafnet.m.a")
    assert graph["leafnet.m.c"] == set()  # TYPE_CHECKING only


def test_package_init_rules(tmp_path):
    # An __init__ importing its own submodule is no cycle; a submodule importing a name
    # from that __init__ is one; importing p.x from outside p also imports p's __init__.
    modules = _fake_package(tmp_path, {
        "__init__.py": "", "p/__init__.py": "from leafnet.p.x import X\nVALUE = 1\n",
        "p/x.py": "X = 1\n", "p/y.py": "from leafnet.p import VALUE\n",
        "q.py": "from leafnet.p.x import X\n",
    })
    graph = import_graph(modules)
    assert strongly_connected(graph) == []
    assert graph["leafnet.q"] == {"leafnet.p", "leafnet.p.x"}
    (tmp_path / "leafnet/p/__init__.py").write_text("from leafnet.p import x, y\n", encoding="utf-8")
    assert strongly_connected(import_graph(modules)) == [{"leafnet.p", "leafnet.p.y"}]


def test_private_names_are_found(tmp_path):
    modules = _fake_package(tmp_path, {
        "__init__.py": "__version__ = '1'\n",
        "a.py": "_x = 1\ndef _f():\n    return _x\n",
        "b.py": "from leafnet.a import _x\nfrom leafnet import __version__\n",
        "c.py": "def g():\n    from leafnet import a\n    return a._f()\n",
        "d.py": "import leafnet.a as mod\nprint(mod._x)\n",
    })
    assert private_imports(modules) == ["leafnet.b: leafnet.a._x", "leafnet.c: leafnet.a._f", "leafnet.d: leafnet.a._x"]


def test_line_counts_are_wc_l(tmp_path):
    (tmp_path / "leafnet").mkdir()
    (tmp_path / "leafnet" / "a.py").write_text("x = 1\n" * (MAX_LINES + 1), encoding="utf-8")
    assert line_counts(tmp_path / "leafnet") == {"leafnet/a.py": MAX_LINES + 1}


# ------------------------------------------------------------------ the documented layers

ARCHITECTURE = ROOT / "docs" / "architecture.md"


def documented_layers(text: str | None = None) -> dict[str, int]:
    """Unit -> layer number, from the numbered list under "Direction of imports" in
    docs/architecture.md: each item names its units in backticks before the dash."""
    text = ARCHITECTURE.read_text(encoding="utf-8") if text is None else text
    section = text.split("## Direction of imports", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, int] = {}
    for line in section.splitlines():
        head, dot, rest = line.partition(". ")
        if dot and head.isdigit():
            for unit in rest.split(" — ", 1)[0].split("`")[1::2]:
                layers[unit] = int(head)
    return layers


def unit_of(module: str) -> str:
    """The unit a module belongs to in the layer list: its top-level module or package under
    ``leafnet``, except that every command-line module (``cli``, ``*_cli``, ``*.cli``,
    ``cli_help``, ``__main__``) and the package ``__init__`` are the unit ``cli``."""
    parts = module.split(".")
    last = parts[-1]
    if module == "leafnet" or last in ("cli", "cli_help", "__main__") or last.endswith("_cli"):
        return "cli"
    return parts[1]


def layer_violations(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """Imports of a lower layer (a larger number) from a higher one, and units the list lacks."""
    out = []
    for importer, targets in sorted(graph.items()):
        for target in sorted(targets):
            a, b = unit_of(importer), unit_of(target)
            missing = [u for u in (a, b) if u not in layers]
            if missing:
                out.append(f"{importer} -> {target}: {', '.join(missing)} not in docs/architecture.md's layers")
            elif layers[b] > layers[a]:
                out.append(f"{importer} (layer {layers[a]}) -> {target} (layer {layers[b]})")
    return sorted(set(out))


def test_imports_follow_the_documented_layers():
    layers = documented_layers()
    assert len(layers) > 10, "docs/architecture.md: the layer list under 'Direction of imports' was not found"
    bad = layer_violations(import_graph(), layers)
    assert not bad, "imports against docs/architecture.md's 'Direction of imports':\n" + "\n".join(bad)


def test_a_layer_violation_is_found():
    layers = documented_layers("## Direction of imports\n\n1. `runs`, `errors` — x\n2. `data` — y\n\n## Next\n")
    assert layers == {"runs": 1, "errors": 1, "data": 2}
    graph = {"leafnet.runs": {"leafnet.data.scan"}, "leafnet.data.scan": {"leafnet.errors"},
             "leafnet.data.cli": {"leafnet.runs"}}
    assert layer_violations(graph, layers) == [
        "leafnet.data.cli -> leafnet.runs: cli not in docs/architecture.md's layers",
        "leafnet.runs (layer 1) -> leafnet.data.scan (layer 2)"]
