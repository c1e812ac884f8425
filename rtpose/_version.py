"""The version of rtpose, in a leaf module that any layer may import (``rtpose.__version__``
re-exports it; the bench report records it; pyproject.toml reads the package version from it)."""

__version__ = "0.1.0"
