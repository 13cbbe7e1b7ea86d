"""The code's own shape: every function fits one screen, so the next person can read it whole to change it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("app.py", "app_pages", "glyphcore", "bench", "tests")
SCREEN_LINES = 60  # a function, from its first decorator to its last line


def function_lengths(path: Path) -> list[tuple[int, str, int]]:
    """(first line, qualified name, lines) of every function and method in one Python file."""
    out: list[tuple[int, str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}."
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                out.append((first, name[:-1], (child.end_lineno or child.lineno) - first + 1))
            visit(child, name)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")
    return out


def python_files() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        top = ROOT / name
        files += [top] if top.is_file() else sorted(top.rglob("*.py"))
    return files


def test_the_check_sees_nested_functions_and_decorators(tmp_path):
    src = tmp_path / "m.py"
    body = "\n".join(f"        x{i} = {i}" for i in range(3))
    src.write_text(
        f"class C:\n    @staticmethod\n    @property\n    def f():\n{body}\n        def g():\n            pass\n"
    )
    assert function_lengths(src) == [(2, "C.f", 8), (8, "C.f.g", 2)]


def test_every_function_fits_one_screen():
    files = python_files()
    assert len(files) > 100 and ROOT / "glyphcore" / "stats.py" in files  # the check reads the real tree
    too_long = [
        f"{path.relative_to(ROOT)}:{line} {name} is {n} lines"
        for path in files
        for line, name, n in function_lengths(path)
        if n > SCREEN_LINES
    ]
    assert not too_long, (
        f"Functions longer than one screen ({SCREEN_LINES} lines, decorators included); split each into "
        "named steps:\n" + "\n".join(too_long)
    )
