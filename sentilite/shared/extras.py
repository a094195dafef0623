"""Optional parts of sentilite: say what to install instead of failing with ModuleNotFoundError."""
from __future__ import annotations

import importlib.util

from .errors import MissingExtraError


def require(command: str, extra: str, *modules: str) -> None:
    """Raise MissingExtraError naming the first missing module and the pip command that brings it."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(
                f"`sentilite {command}` needs {module}, which is not installed here "
                f"(this looks like a runtime-only install): pip install 'sentilite[{extra}]'"
            )
