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
