"""The benchmark's kube-proxy dump generator (benchmarks/gen_kubeproxy.py), for tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_kubeproxy",
                                                  ROOT / "benchmarks" / "gen_kubeproxy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_kubeproxy"] = module
    spec.loader.exec_module(module)
    return module


gen = load_generator()
