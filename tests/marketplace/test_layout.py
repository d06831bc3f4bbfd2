"""The product apart from the development tools: the wheel holds the product, and the product imports no tool."""

import ast
import tomllib
from fnmatch import fnmatch

from tests.processes import ROOT

DEVELOPMENT = ("dev_tools", "stripe_double", "bench", "tests")


def wheel_patterns() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(pyproject["tool"]["setuptools"]["packages"]["find"]["include"])


def imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module] if node.level == 0 and node.module else []


def test_the_wheel_holds_no_development_package():
    patterns = wheel_patterns()

    assert [name for name in DEVELOPMENT if any(fnmatch(name, pattern) for pattern in patterns)] == []


def test_the_product_imports_no_development_package():
    paths = [path for pattern in wheel_patterns() for path in sorted(ROOT.glob(f"{pattern}/**/*.py"))]
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno} {name}"
        for path in paths
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in imported(node)
        if name.split(".")[0] in DEVELOPMENT
    ]

    assert len(paths) > 100
    assert found == []


def test_every_file_the_product_reads_besides_code_ships_in_the_wheel():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["*"]
    packages = [path for pattern in wheel_patterns() for path in sorted(ROOT.glob(pattern)) if path.is_dir()]
    files = [
        path.relative_to(package).as_posix()
        for package in packages
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]

    assert len(files) > 50  # templates, static files, the rubric
    # setuptools matches package data by glob, `**` across folders
    assert [name for name in files if not any(fnmatch(name, pattern.replace("**/", "")) for pattern in data)] == []


def test_every_hiring_requests_module_is_in_a_layer_of_the_import_contract():
    """hiring_requests is named module by module in the layers contract (its models sit lower than the rest), so
    a new module would otherwise be in no layer, and nothing would check what it imports."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [contract["layers"] for contract in config if contract["type"] == "layers"]
    named = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    modules = {
        f"hiring_requests.{path.stem}" for path in (ROOT / "hiring_requests").glob("*.py") if path.stem != "__init__"
    } | {
        f"hiring_requests.{path.name}"
        for path in (ROOT / "hiring_requests").iterdir()
        if (path / "__init__.py").exists()
    }

    assert modules - {"hiring_requests.migrations"} <= named
