"""Optional parts of sentilite: say what to install instead of failing with ModuleNotFoundError."""
from __future__ import annotations

import importlib.util

from .errors import MissingExtraError


def install_hint(extra: str = "") -> str:
    """The pip command that installs ``extra`` (the base install for "").

    sentilite is installed from a clone of its repository, not from a package
    index, where `pip install 'sentilite[train]'` finds nothing; `.` names the
    clone, so the command runs in its folder.
    """
    target = f"'.[{extra}]'" if extra else "."
    return f"pip install {target} in the sentilite repository"


def require(command: str, extra: str, *modules: str) -> None:
    """Raise MissingExtraError naming the first missing module and the pip command that brings it."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(
                f"`sentilite {command}` needs {module}, which is not installed here "
                f"(this looks like a runtime-only install): {install_hint(extra)}"
            )
