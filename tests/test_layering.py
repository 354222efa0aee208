"""Layering rules (STYLE.md): imports run one way; only the CLI touches the process."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _modules(package: str):
    for path in sorted((REPO / package).rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def _imports(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_gitref_knows_nothing_of_opentraces():
    for path, tree in _modules("gitref"):
        bad = {m for m in _imports(tree) if m.split(".")[0] in ("opentraces", "click", "rich")}
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_library_never_imports_the_cli():
    for path, tree in _modules("opentraces"):
        if "cli" in path.relative_to(REPO / "opentraces").parts:
            continue
        rel_imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and "cli" in n.module.split(".")]
        assert not rel_imports and not any(m.startswith(("opentraces.cli", "click")) for m in _imports(tree)), path


def test_only_the_cli_reads_the_environment_or_prints():
    for package in ("opentraces", "gitref"):
        for path, tree in _modules(package):
            if "cli" in path.relative_to(REPO / package).parts:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                    raise AssertionError(f"{path.relative_to(REPO)}:{node.lineno} prints")
                if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                        isinstance(node.value, ast.Name) and node.value.id == "os":
                    raise AssertionError(f"{path.relative_to(REPO)}:{node.lineno} reads os.{node.attr}")


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST):
    """Every node, except those under ``if TYPE_CHECKING:`` (type hints, never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _internal_imports(path: Path, tree: ast.AST) -> set[str]:
    """Modules of the opentraces package imported anywhere in ``path`` (function-level too)."""
    me = _module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    out = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("opentraces"):
                continue
            for alias in node.names:  # "from . import layout" names a module
                cand = f"{mod}.{alias.name}"
                out.add(cand if (REPO / (cand.replace(".", "/") + ".py")).exists() else mod)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("opentraces"))
    return out


def test_no_import_cycles_in_the_library():
    """Storage (bucket, batches, blobs, projections) never imports the write path, the mirror or
    maintenance, even inside a function: the import graph of opentraces (CLI aside) has no cycle."""
    graph: dict[str, set[str]] = {}
    for path, tree in _modules("opentraces"):
        if "cli" in path.relative_to(REPO / "opentraces").parts:
            continue
        name = _module_name(path)
        if name == "opentraces":
            continue  # the package's re-exports
        graph[name] = {m for m in _internal_imports(path, tree) if m != name and m != "opentraces"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if m not in graph:
                continue
            if state.get(m) == 1:
                cycle = stack[stack.index(m):] + [m]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_storage_imports_nothing_above_it():
    storage = ("opentraces.bucket", "opentraces.batches", "opentraces.blobs", "opentraces.layout",
               "opentraces.fsio", "opentraces.lock", "opentraces.refnames", "opentraces.statefiles")
    above = ("opentraces.writer", "opentraces.gitmirror", "opentraces.maintenance", "opentraces.capture",
             "opentraces.anchors")
    for path, tree in _modules("opentraces"):
        if _module_name(path) in storage:
            bad = {m for m in _internal_imports(path, tree) if m.startswith(above)}
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"
