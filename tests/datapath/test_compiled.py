"""The compiled build (setup.py: mypyc) is the one in use when the test run says it should be.

scripts/test.sh runs the suite once on the editable install (plain Python) and once more on a
regular install, with NETSLEUTH_EXPECT_COMPILED=1: then every module setup.py names must be
loaded from its C extension, or the second run would silently test plain Python again.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def compiled_modules() -> list[str]:
    text = (ROOT / "setup.py").read_text(encoding="utf-8")
    paths = re.findall(r'"src/(netsleuth/[\w/]+)\.py"', text)
    return [p.replace("/", ".") for p in paths]


def test_setup_names_existing_modules() -> None:
    names = compiled_modules()
    assert names, "setup.py names no module to compile"
    for name in names:
        assert (ROOT / "src" / (name.replace(".", "/") + ".py")).is_file(), name


@pytest.mark.skipif(os.environ.get("NETSLEUTH_EXPECT_COMPILED") != "1",
                    reason="this run tests the plain-Python modules (NETSLEUTH_EXPECT_COMPILED unset)")
def test_compiled_modules_are_in_use() -> None:
    for name in compiled_modules():
        module = importlib.import_module(name)
        assert str(module.__file__).endswith(".so"), f"{name} is loaded from {module.__file__}"
