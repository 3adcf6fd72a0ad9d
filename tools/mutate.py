"""Mutation testing of the judgement code (`make mutate`): does a test fail when the code
that decides a verdict, an exit status or a parsed name is changed a little?

The tester is mutmut 3 (the ``mutate`` extra). It needs its own ``pyproject.toml``
section and copies the code into ``mutants/``; both live in a run directory,
``build/mutation/``, so that the repository itself carries one list of what is mutated:
:data:`JUDGEMENT_CODE` below. mutmut records which test calls which function in one
traced run of the chosen (non-lab) tests, then runs for each mutant only the tests that
call its function, two mutants at a time.

    python tools/mutate.py run        # mutate, test, report (what `make mutate` does)
    python tools/mutate.py report     # the report again, from the last run's results

The report (also written to ``reports/mutation.txt``) gives the score per module and
every surviving mutant as a diff, except those listed in ``docs/mutation-equivalents.md``
with why they cannot change behaviour.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "build" / "mutation"
REPORT = ROOT / "reports" / "mutation.txt"
EQUIVALENTS = ROOT / "docs" / "mutation-equivalents.md"
SUBPROCESS_HOOKS = ROOT / "tools" / "mutation_subprocess"
TARGET_SCORE = 90.0


@dataclass(frozen=True)
class Target:
    """Code whose mutants must be killed: ``files`` (a path or glob from the repository
    root) and, when only part of a file judges, the ``functions`` in it ("name" or
    "Class.method"); the tests that may kill them (mutmut narrows these per mutant)."""

    files: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()
    through_subprocesses: bool = False
    """Also credit the tests whose ``python -m dotaudit`` subprocesses reach these
    functions (the exit status is only ever seen by the process's parent)."""


DETECT_TESTS = ("tests/test_detect",)
PROBE_TESTS = (
    "tests/test_probe/test_verdict.py",
    "tests/test_probe/test_runner.py",
    "tests/test_probe/test_faults.py",
    "tests/test_probe/test_checks",
)
CERTIFICATE_TESTS = (
    "tests/test_x509.py",
    "tests/test_x509_names.py",
    "tests/test_probe/test_checks",
)
# The commands whose exit status judges (analyze, report, probe; `events` has none).
EXIT_STATUS_TESTS = (
    "tests/test_cli/test_analyze.py",
    "tests/test_cli/test_output.py",
    "tests/test_cli/test_probe.py",
    "tests/test_cli/test_report.py",
    "tests/test_probe/test_runner.py",
)

JUDGEMENT_CODE: tuple[Target, ...] = (
    Target("dotaudit/detect/*.py", DETECT_TESTS),
    Target("dotaudit/probe/verdict.py", PROBE_TESTS),
    Target("dotaudit/probe/checks/cert_*.py", PROBE_TESTS),
    # The certificate judgements the cert.* checks (and the self-signed decision of the
    # passive side) rest on; parsing a captured certificate is the dissector's, fuzzed.
    Target(
        "dotaudit/x509.py",
        CERTIFICATE_TESTS,
        (
            "is_self_signed",
            "KeyInfo.kind",
            "key_info",
            "load_certificate",
            "_extension",
            "_name_text",
            "san_names",
            "dns_name_matches",
            "matches_name",
            "matches_ip",
            "days_left",
            "signature_hash",
            "aia_issuer_urls",
            "describe",
            "issuer_text",
        ),
    ),
    # The exit status: computed once (cli/output.py) from what the report shows (its
    # findings and each probed target's severity, model/report.py; the target's severity
    # from its verdict and checks, probe/runner.py).
    Target(
        "dotaudit/cli/output.py", EXIT_STATUS_TESTS, ("exit_status",), through_subprocesses=True
    ),
    Target(
        "dotaudit/model/report.py",
        EXIT_STATUS_TESTS,
        ("AuditReport.exit_severity", "AuditReport.target_severities"),
        through_subprocesses=True,
    ),
    Target(
        "dotaudit/probe/runner.py",
        EXIT_STATUS_TESTS,
        ("result_severity", "target_row"),
        through_subprocesses=True,
    ),
    Target(
        "dotaudit/dissect/tls.py",
        (
            "tests/test_dissect/test_tls.py",
            "tests/test_dissect/test_tls_hello_differential.py",
            "tests/test_dissect/test_tls_fuzz.py",
        ),
        (
            "_parse_sni",
            "_parse_alpn",
            "escape_text",
            "_Reader.__init__",
            "_Reader.remaining",
            "_Reader.u8",
            "_Reader.u16",
            "_Reader.take",
            "_Reader.sub",
        ),
    ),
    Target(
        "dotaudit/capture/reassembly.py",
        ("tests/test_capture/test_reassembly.py", "tests/test_capture/test_flows.py"),
    ),
)

PYTEST_ARGS = [
    # Credits the calls of `python -m dotaudit` subprocesses to the CLI tests that run them.
    "-p",
    "subprocess_hits",
    "-m",
    "not lab",
    "-p",
    "no:cacheprovider",
    # The same examples for every mutant, and no example database shared between them: a
    # kill must not depend on the draw (tests/conftest.py's derandomized profile).
    "--hypothesis-profile=ci",
]
# Copied next to the code into the run directory: what the chosen tests read.
ALSO_COPY = ("tests", "pcaps", "schema", "docs", "bench", "Makefile", "README.md")


def module_of(path: Path) -> str:
    return ".".join(path.with_suffix("").parts)


def target_files(target: Target) -> list[Path]:
    return sorted(p.relative_to(ROOT) for p in ROOT.glob(target.files))


def mutant_patterns(targets: Iterable[Target]) -> list[str]:
    """mutmut mutant-name globs: ``module.x_function__mutmut_*`` for a plain function,
    ``module.xǁClassǁmethod__mutmut_*`` for a method, ``module.*`` for a whole file."""
    patterns: list[str] = []
    for target in targets:
        for path in target_files(target):
            module = module_of(path)
            if not target.functions:
                patterns.append(f"{module}.*")
            for function in target.functions:
                cls, _, name = function.rpartition(".")
                mangled = f"xǁ{cls}ǁ{name}" if cls else f"x_{name}"
                patterns.append(f"{module}.{mangled}__mutmut_*")
    return patterns


def _toml_list(items: Iterable[str]) -> str:
    return "[" + ", ".join('"' + item.replace("\\", "\\\\") + '"' for item in items) + "]"


def _shared_corpus() -> Path | None:
    """The public corpus folder (``../shared`` beside the checkout, or $DOTAUDIT_SHARED)."""
    for candidate in (os.environ.get("DOTAUDIT_SHARED"), str(ROOT.parent / "shared")):
        if candidate and (Path(candidate) / "corpus").is_dir():
            return Path(candidate).resolve()
    return None


def stage(targets: Sequence[Target], *, keep: bool = False) -> None:
    """The run directory: links to the code and tests, and a pyproject.toml holding the
    project's own settings plus mutmut's section: every target of JUDGEMENT_CODE is
    mutated, and the tests are those of ``targets``, the ones this run tests (tracing the
    whole list's tests costs minutes and takes in slow CLI tests no detector needs).
    Fresh unless ``keep``: then the last run's results stay, and only the recorded calls
    are redone (the tests may have changed since, and so may the selection)."""
    if keep and (STAGE / "mutants").is_dir():
        (STAGE / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        write_settings(targets)
        return
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    for name in ("dotaudit", *ALSO_COPY):
        (STAGE / name).symlink_to(ROOT / name)
    # The tests find the corpus at ../shared from their own root, which is mutants/.
    corpus = _shared_corpus()
    if corpus is not None:
        (STAGE / "shared").symlink_to(corpus)
    # On the path from start-up, so it must exist by then: Python remembers a missing
    # folder on sys.path as one that holds nothing, even after mutmut fills it.
    (STAGE / "mutants").mkdir()
    write_settings(targets)


def write_settings(targets: Sequence[Target]) -> None:
    tests = sorted({t for target in targets for t in target.tests if (ROOT / t).exists()})
    section = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["dotaudit"]',
            f"only_mutate = {_toml_list(t.files for t in JUDGEMENT_CODE)}",
            f"also_copy = {_toml_list(ALSO_COPY)}",
            f"pytest_add_cli_args_test_selection = {_toml_list(tests)}",
            f"pytest_add_cli_args = {_toml_list(PYTEST_ARGS)}",
            # A mutant that loops forever is stopped after 3x (not mutmut's 15x) the CPU
            # time of its tests: a handful of such mutants otherwise dominate the run.
            "timeout_multiplier = 3.0",
            "",
        ]
    )
    (STAGE / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + section)


def run(
    targets: Sequence[Target], jobs: int, *, keep: bool = False, survivors: bool = False
) -> int:
    """Mutate and test ``targets``. The run directory is always made for all of
    JUDGEMENT_CODE, so that ``keep`` can re-run some targets and report all; with
    ``survivors`` only the mutants of ``targets`` that the last run did not kill."""
    names = mutant_patterns(targets)
    if survivors:
        keep = True
        names = [m.name for m in load_results(targets) if m.status not in KILLED]
        if not names:
            return report(JUDGEMENT_CODE)
    stage(targets, keep=keep)
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        print("mutate: mutmut is not installed (pip install -e '.[mutate]')", file=sys.stderr)
        return 2
    start = time.monotonic()
    command = [str(mutmut), "run", "--max-children", str(jobs), *names]
    # CI=true would turn the skips of absent corpus files into failures of the clean run.
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    # Every Python process, the tests' `python -m dotaudit` too, imports the mutated copy
    # and starts with the hook that reports a subprocess's calls (SUBPROCESS_HOOKS).
    env["DOTAUDIT_MUTATION_SUBPROCESS_MODULES"] = ",".join(
        module_of(path) + "."
        for target in JUDGEMENT_CODE
        if target.through_subprocesses
        for path in target_files(target)
    )
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SUBPROCESS_HOOKS), str(STAGE / "mutants"), *filter(None, [env.get("PYTHONPATH")])]
    )
    code = subprocess.run(command, cwd=STAGE, env=env, check=False).returncode
    elapsed = time.monotonic() - start
    if code != 0:
        print(f"mutate: mutmut exited {code}", file=sys.stderr)
        return 2
    return report(JUDGEMENT_CODE if keep else targets, elapsed)


# --- results -------------------------------------------------------------------------

STATUS_BY_EXIT_CODE = {
    1: "killed",
    3: "killed",
    37: "killed",  # caught by the type checker (not configured, kept for completeness)
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
}
KILLED = {"killed", "timeout", "segfault"}
NOT_RUN = "not run"
"""A mutant that hangs or crashes the tests is caught as surely as one that fails them."""


@dataclass(frozen=True)
class Mutant:
    name: str
    path: Path
    status: str

    @property
    def function(self) -> str:
        return self.name.partition("__mutmut_")[0]


def load_results(targets: Sequence[Target]) -> list[Mutant]:
    import json

    patterns = mutant_patterns(targets)
    mutants: list[Mutant] = []
    for target in targets:
        for path in target_files(target):
            meta = STAGE / "mutants" / f"{path}.meta"
            if not meta.exists():
                continue
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            for name, code in sorted(codes.items(), key=lambda kv: _natural(kv[0])):
                if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                    status = NOT_RUN if code is None else STATUS_BY_EXIT_CODE.get(code, "odd")
                    mutants.append(Mutant(name, path, status))
    return mutants


def _score_columns(mutants: int, not_run: int, killed: int, equiv: int, left: int) -> str:
    tested = mutants - not_run
    score = 100.0 * (killed + equiv) / tested if tested else 0.0
    mark = "  partial" if not_run else ""
    if tested and score < TARGET_SCORE:
        mark += "  < target"
    shown = f"{score:>5.1f}%" if tested else f"{'-':>6}"
    return f"{mutants:>7} {not_run:>7} {killed:>6} {equiv:>5} {left:>4} {shown}{mark}"


def _natural(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


def mutant_diff(mutant: Mutant) -> str:
    """The unified diff of one mutant against its function, as ``mutmut show`` prints it."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = Path.cwd()
    os.chdir(STAGE)
    try:
        return get_diff_for_mutant(mutant.name, path=mutant.path)
    finally:
        os.chdir(cwd)


def changed_lines(diff: str) -> tuple[str, str]:
    """The original and the mutated line(s) of a diff, whitespace-collapsed."""
    lines = diff.splitlines()
    removed = [ln[1:] for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:] for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    return _squash(" ".join(removed)), _squash(" ".join(added))


def _squash(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Equivalent:
    function: str
    original: str
    mutated: str
    why: str


_ROW = re.compile(
    r"^\|\s*`(?P<f>[^`]+)`\s*\|\s*`(?P<o>.*?)`\s*\|\s*`(?P<m>.*?)`\s*\|(?P<w>.+)\|\s*$"
)


def load_equivalents(path: Path = EQUIVALENTS) -> list[Equivalent]:
    """Rows ``| `function` | `original line` | `mutated line` | why |`` of the equivalents
    file. A row matches a survivor by function and changed lines, not by mutant number,
    which shifts whenever the function changes."""
    if not path.exists():
        return []
    rows: list[Equivalent] = []
    for line in path.read_text().splitlines():
        match = _ROW.match(line.replace("\\|", "\x00"))
        if match:
            o, m = (_squash(match[k].replace("\x00", "|")) for k in ("o", "m"))
            rows.append(Equivalent(match["f"], o, m, match["w"].replace("\x00", "|").strip()))
    return rows


def report(targets: Sequence[Target], elapsed: float | None = None) -> int:
    mutants = load_results(targets)
    if not mutants:
        print("mutate: no results; run `make mutate` first", file=sys.stderr)
        return 2
    equivalents = load_equivalents()
    used: set[Equivalent] = set()
    survivors: list[tuple[Mutant, str]] = []
    equivalent_names: set[str] = set()
    for mutant in mutants:
        if mutant.status in KILLED or mutant.status == NOT_RUN:
            continue
        diff = mutant_diff(mutant)
        original, mutated = changed_lines(diff)
        match = next(
            (
                e
                for e in equivalents
                if e.function == mutant.function and e.original == original and e.mutated == mutated
            ),
            None,
        )
        if match is not None and mutant.status == "survived":
            used.add(match)
            equivalent_names.add(mutant.name)
        else:
            survivors.append((mutant, diff))

    lines: list[str] = []
    header = (
        f"{'module':<40} {'mutants':>7} {'not run':>7} {'killed':>6} {'equiv':>5} {'left':>4} "
        f"{'score':>6}"
    )
    lines += [header, "-" * len(header)]
    totals: Counter[str] = Counter()
    by_path: dict[Path, list[Mutant]] = {}
    for mutant in mutants:
        by_path.setdefault(mutant.path, []).append(mutant)
    for path, group in sorted(by_path.items()):
        not_run = sum(m.status == NOT_RUN for m in group)
        killed = sum(m.status in KILLED for m in group)
        equiv = sum(m.name in equivalent_names for m in group)
        left = len(group) - not_run - killed - equiv
        totals.update(mutants=len(group), not_run=not_run, killed=killed, equiv=equiv, left=left)
        lines.append(f"{path!s:<40} {_score_columns(len(group), not_run, killed, equiv, left)}")
    lines.append("-" * len(header))
    all_columns = _score_columns(
        totals["mutants"], totals["not_run"], totals["killed"], totals["equiv"], totals["left"]
    )
    lines.append(f"{'all':<40} {all_columns}")
    lines.append("")
    lines.append(
        "score = (killed + listed equivalent) / mutants tested; killed includes timeouts. "
        f"Target: {TARGET_SCORE:.0f}% per module, every mutant tested."
    )
    if totals["not_run"]:
        lines.append(
            f"PARTIAL: {totals['not_run']} mutants not tested (the run was stopped or did not"
            " select them); a partial module's score covers its tested mutants only."
        )
    if elapsed is not None:
        lines.append(f"run time: {elapsed:.0f} s (mutmut run, after staging)")
    lines.append("")
    lines.append(f"survivors ({len(survivors)}), not listed in {EQUIVALENTS.relative_to(ROOT)}:")
    for mutant, diff in survivors:
        lines.append("")
        lines.append(f"{mutant.name}  [{mutant.status}]")
        lines += ["    " + ln for ln in diff.splitlines()[2:]]
    unmatched = [e for e in equivalents if e not in used]
    # A listed mutant may have been stopped by the CPU limit on a busy machine: a
    # "killed" that says nothing about the tests. Name those apart from stale rows.
    stopped: list[tuple[Equivalent, Mutant]] = []
    functions = {e.function for e in unmatched}
    for mutant in mutants:
        if mutant.status in KILLED and mutant.function in functions:
            original, mutated = changed_lines(mutant_diff(mutant))
            for e in unmatched:
                if (e.function, e.original, e.mutated) == (mutant.function, original, mutated):
                    stopped.append((e, mutant))
    stale = [e for e in unmatched if e not in {s for s, _ in stopped}]
    if stopped:
        lines.append("")
        lines.append(f"listed equivalents that the last run counted as killed ({len(stopped)}):")
        lines += [f"    {m.name} [{m.status}]: {e.mutated}" for e, m in stopped]
    if stale:
        lines.append("")
        lines.append(f"equivalents that matched no mutant ({len(stale)}): remove them")
        lines += [f"    {e.function}: {e.mutated}" for e in stale]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    REPORT.parent.mkdir(exist_ok=True)
    partial = REPORT.with_suffix(".txt.partial")
    partial.write_text(text)
    partial.replace(REPORT)
    print(f"\nwrote {REPORT.relative_to(ROOT)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("command", choices=("run", "report"))
    parser.add_argument(
        "--only",
        metavar="GLOB",
        action="append",
        help="only the targets whose files match (e.g. 'dotaudit/detect/*'); repeatable",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the last run's results: re-run only --only's targets, report everything",
    )
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="re-run only the mutants the last run did not kill (implies --keep)",
    )
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATE_JOBS", "2")))
    args = parser.parse_args(argv)
    targets = [
        t
        for t in JUDGEMENT_CODE
        if not args.only or any(fnmatch.fnmatch(t.files, glob) for glob in args.only)
    ]
    if not targets:
        parser.error(f"--only {args.only!r} matches no target")
    if args.command == "run":
        return run(targets, args.jobs, keep=args.keep, survivors=args.survivors)
    return report(targets)


if __name__ == "__main__":
    sys.exit(main())
