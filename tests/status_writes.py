"""Where a package's code writes a `status`: by assignment (`x.status = ...`) or in a bulk `.update(status=...)`."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class _Writes(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module, self.function = module, "<module>"
        self.found: set[tuple[str, str]] = set()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.visit_FunctionDef(node)

    def _targets(self, targets: list[ast.expr]) -> None:
        for target in targets:
            if any(isinstance(part, ast.Attribute) and part.attr == "status" for part in ast.walk(target)):
                self.found.add((self.module, self.function))

    def visit_Assign(self, node: ast.Assign) -> None:
        self._targets(node.targets)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._targets([node.target])
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._targets([node.target])
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        updates = isinstance(node.func, ast.Attribute) and node.func.attr == "update"
        if updates and any(keyword.arg == "status" for keyword in node.keywords):
            self.found.add((self.module, self.function))
        self.generic_visit(node)


def status_writes(package: str, *, skip: tuple[str, ...] = ()) -> set[tuple[str, str]]:
    """(module, innermost enclosing function) of every status write in `package`, migrations and `skip` aside.

    `module` is the file's path from the repository root; `skip` names folders of the package to leave out.
    """
    found: set[tuple[str, str]] = set()
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT)
        if "migrations" in relative.parts or any(part in skip for part in relative.parts):
            continue
        visitor = _Writes(relative.as_posix())
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        found |= visitor.found
    return found
