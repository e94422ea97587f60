"""Scripts run as ``python -c`` with some packages made unimportable, as on an install without them."""

from __future__ import annotations

EMBEDDING_BACKENDS = ("torch", "sentence_transformers", "transformers", "onnxruntime", "onnx")


def without(*packages: str) -> str:
    """Python source that, run first, makes every import of ``packages`` (and their submodules) fail."""
    return (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {tuple(packages)!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
    )
