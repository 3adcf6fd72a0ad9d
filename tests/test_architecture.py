"""The import contract: data flows one way through dotaudit's layers.

Every ``import`` in dotaudit/ (including those under ``if TYPE_CHECKING:`` and inside
functions) is read with ``ast`` and checked against the tables below. A new top-level
package or module of dotaudit must be added to ``LAYERS`` before this test passes, which
is the point: someone decides where it sits. docs/development.md describes the same order.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "dotaudit"

# What each part of dotaudit may import from dotaudit, besides itself and the package root
# (``dotaudit.__version__``). Read it bottom-up: each part may use the ones above it.
LAYERS: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    # which files a run reads: identity by inode, content by hash (no dotaudit imports)
    "files": frozenset(),
    "model": frozenset({"errors"}),
    "x509": frozenset({"errors", "model"}),  # certificates: shared by dissect and probe
    # redaction: pseudonyms and name masks, shared by the report pass and evidence rewriting
    "redact": frozenset({"errors", "model"}),
    "capture": frozenset({"errors", "model", "redact"}),
    "dissect": frozenset({"errors", "model", "x509", "capture"}),
    "detect": frozenset({"errors", "model", "x509", "capture", "dissect"}),
    "probe": frozenset({"errors", "model", "x509"}),
    "render": frozenset({"errors", "model"}),
    "pipeline": frozenset({"errors", "files", "model", "x509", "capture", "dissect", "detect"}),
    "parallel_events": frozenset({"errors", "model", "capture", "dissect", "pipeline"}),
    # live capture judged as it comes: the layers of analyze over an interface
    "watch": frozenset({"errors", "model", "x509", "capture", "dissect", "detect"}),
    # distributed analyze: the pipeline's work as tasks on a Dask cluster
    "cluster": frozenset({"errors", "model", "x509", "capture", "dissect", "detect", "pipeline"}),
    "__main__": frozenset({"cli"}),
}
LAYERS["cli"] = frozenset(LAYERS) - {"__main__"}  # the command line may use every part

# Single modules a part may not import although its layer would allow it.
FORBIDDEN: dict[str, frozenset[str]] = {
    # capture writes evidence from the model's plan; it never reads a finished report.
    "capture": frozenset({"dotaudit.model.report"}),
}

# Third-party and standard modules only some places may import: (module, where, why).
RESTRICTED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("argparse", ("dotaudit.cli",), "nothing below the command line sees argparse"),
    ("scapy", ("dotaudit.capture", "dotaudit.probe.transport.raw"),
     "scapy only in capture/ and the probe's raw-socket code"),
    ("socket", ("dotaudit.probe.transport",), "network I/O only in the probe transport"),
    ("httpx", ("dotaudit.probe.transport",), "network I/O only in the probe transport"),
    ("aioquic", ("dotaudit.probe.transport",), "network I/O only in the probe transport"),
    ("distributed", ("dotaudit.cluster",), "Dask only in the cluster engine (optional)"),
    ("dask", ("dotaudit.cluster",), "Dask only in the cluster engine (optional)"),
    ("fsspec", ("dotaudit.cluster",), "remote inputs are read only by the cluster's tasks"),
    ("pyarrow", ("dotaudit.render.parquet",), "Parquet only in its writer (optional)"),
)  # fmt: skip


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, e.g. ``dotaudit.render.html``."""
    imported: str
    """The imported module, e.g. ``dotaudit.capture.evidence``."""
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(module: str, source: str, is_package: bool = False) -> Iterator[Import]:
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield Import(module, base, node.lineno)
            if base == "dotaudit":  # `from dotaudit import cli` imports dotaudit.cli
                for alias in node.names:
                    if alias.name in LAYERS:
                        yield Import(module, f"dotaudit.{alias.name}", node.lineno)


def part_of(module: str) -> str:
    """``dotaudit.render.html`` -> ``render``; the package root -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(item: Import) -> list[str]:
    where = f"{item.module}:{item.line} imports {item.imported}"
    found = []
    importer = part_of(item.module)
    if item.imported == "dotaudit" or item.imported.startswith("dotaudit."):
        target = part_of(item.imported)
        if importer not in LAYERS:
            found.append(f"{where}: {importer!r} has no row in LAYERS; place it in the table")
        elif target and target != importer and target not in LAYERS[importer]:
            found.append(f"{where}: {importer} may not import {target}")
        forbidden = FORBIDDEN.get(importer, frozenset())
        if any(item.imported == f or item.imported.startswith(f + ".") for f in forbidden):
            found.append(f"{where}: forbidden for {importer}")
    top = item.imported.split(".")[0]
    for name, allowed, why in RESTRICTED:
        if top == name and not any(
            item.module == a or item.module.startswith(a + ".") for a in allowed
        ):
            found.append(f"{where}: {why}")
    return found


def all_imports() -> Iterator[Import]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield from imports_in(module_name(path), path.read_text(), path.name == "__init__.py")


def test_dotaudit_keeps_the_import_contract() -> None:
    found = [problem for item in all_imports() for problem in violations(item)]
    assert found == [], "\n".join(found)


def test_every_part_of_dotaudit_has_a_row() -> None:
    parts = {part_of(module_name(p)) for p in PACKAGE.rglob("*.py")} - {""}
    assert parts <= set(LAYERS), parts - set(LAYERS)


@pytest.mark.parametrize(
    ("module", "source", "complaint"),
    [
        ("dotaudit.render.html", "from dotaudit.capture.evidence import x", "render may not"),
        ("dotaudit.capture.evidence", "from dotaudit.model.report import AuditReport",
         "forbidden for capture"),
        ("dotaudit.detect.leak", "import dotaudit.render.text", "detect may not"),
        ("dotaudit.probe.runner", "from dotaudit.render import base", "probe may not"),
        ("dotaudit.probe.base", "from dotaudit import cli", "probe may not import cli"),
        ("dotaudit.pipeline", "import argparse", "nothing below the command line"),
        ("dotaudit.model.report", "from dotaudit.detect.base import Context", "model may not"),
        ("dotaudit.dissect.tls", "from dotaudit.probe.target import x", "dissect may not"),
        ("dotaudit.render.html", "from ..capture import reader", "render may not"),
        ("dotaudit.probe.checks.doh", "import socket", "network I/O only"),
        ("dotaudit.detect.leak", "from scapy.all import IP", "scapy only"),
        ("dotaudit.newpart", "from dotaudit.model import report", "no row in LAYERS"),
    ],
)  # fmt: skip
def test_the_rules_catch_each_kind_of_breach(module: str, source: str, complaint: str) -> None:
    found = [p for item in imports_in(module, source) for p in violations(item)]
    assert any(complaint in problem for problem in found), found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("dotaudit.capture.evidence", "from dotaudit.model.evidence import EvidencePlan"),
        ("dotaudit.cli.probe", "import argparse"),
        ("dotaudit.probe.transport.raw", "from scapy.layers.inet import IP"),
        ("dotaudit.render.html", "from dotaudit import __version__"),
        ("dotaudit.detect.leak", "from dotaudit.model.events import Event"),
    ],
)
def test_the_rules_allow_what_the_layers_allow(module: str, source: str) -> None:
    assert [p for item in imports_in(module, source) for p in violations(item)] == []
