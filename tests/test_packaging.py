"""The package list in pyproject.toml names every code folder, so a built wheel holds all of them."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> tuple[list[str], dict[str, str]]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return setuptools["packages"], setuptools["package-dir"]


def _folder(package: str, package_dir: dict[str, str]) -> Path:
    """Where setuptools looks for a package: its own mapping, else its parent's folder plus its last name."""
    if package in package_dir:
        return ROOT / package_dir[package]
    parent, _, name = package.rpartition(".")
    return _folder(parent, package_dir) / name


def test_every_package_folder_is_listed():
    packages, package_dir = _declared()
    found = set()
    for package in packages:
        folder = _folder(package, package_dir)
        assert (folder / "__init__.py").is_file(), f"{package}: no {folder.relative_to(ROOT)}/__init__.py"
        found |= {".".join([package, *sub.parent.relative_to(folder).parts])
                  for sub in folder.rglob("__init__.py")}
    missing = sorted(found - set(packages))
    assert not missing, f"pyproject.toml [tool.setuptools] packages leaves out {missing}: a wheel would lack them"


def test_no_root_folder_shadows_the_package():
    """Python puts the working directory first on sys.path: a root folder named sentilite would hide the install."""
    assert not (ROOT / "sentilite").exists()
    _, package_dir = _declared()
    assert package_dir["sentilite"] != "sentilite"
