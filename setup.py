"""Build hook: the packet path's hot modules are compiled with mypyc (docs/performance.md).

The modules stay plain, fully typed Python: an editable install (`pip install -e .`, for
working on the code) and NETSLEUTH_PURE=1 use them as they are; a regular install compiles
them to C extensions, which trace about twice as fast. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

# What a trace runs through, packet by packet; compiled together so calls between them are
# direct C calls.
COMPILED = [
    "src/netsleuth/datapath/packet.py",
    "src/netsleuth/datapath/trace_model.py",
    "src/netsleuth/datapath/fib.py",
    "src/netsleuth/datapath/netfilter.py",
    "src/netsleuth/datapath/trace.py",
]


def ext_modules() -> list[object]:
    # An editable install must keep running the source as edited: a compiled module beside
    # it would shadow every later change.
    if os.environ.get("NETSLEUTH_PURE") == "1" or "editable_wheel" in sys.argv:
        return []
    from mypyc.build import mypycify

    return list(mypycify(COMPILED, opt_level="3"))


setup(ext_modules=ext_modules())
