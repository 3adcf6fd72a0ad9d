"""The CI skip guard (tests/ci_guard.py) on tiny test files, run by a pytest subprocess.

Oracle: the policy in docs/development.md: under CI=true a skip or an xfail fails unless
its reason starts with "not applicable:", whether it comes from a test, a mark or a whole
module at collection; without CI=true they skip and xfail as pytest always does.
"""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

pytest_plugins = ["pytester"]

SKIPS = """
import pytest

def test_skip_call():
    pytest.skip("tshark not installed")

@pytest.mark.skipif(True, reason="openssl CLI missing")
def test_skipif_mark():
    pass

@pytest.mark.skip(reason="later")
def test_skip_mark():
    pass

def test_reason_merely_mentions_the_prefix():
    pytest.skip("lab unavailable (not applicable: is not at the start)")

def test_not_applicable():
    pytest.skip("not applicable: no non-loopback interface is up")

@pytest.mark.skipif(True, reason="not applicable: IPv6 is disabled on this host")
def test_not_applicable_mark():
    pass
"""

XFAILS = """
import pytest

@pytest.mark.xfail(reason="known bug")
def test_xfail_mark():
    assert False

@pytest.mark.xfail(reason="known bug, since fixed")
def test_xpass():
    pass

def test_imperative_xfail():
    pytest.xfail("flaky on this kernel")

@pytest.mark.xfail(reason="not applicable: the kernel cannot show this")
def test_not_applicable_xfail():
    assert False
"""

MODULE_SKIP = """
import pytest
pytest.skip("corpus missing", allow_module_level=True)

def test_never_collected():
    pass
"""

MODULE_IMPORTORSKIP = """
import pytest
missing = pytest.importorskip("no_such_module_for_the_guard_test")

def test_never_collected():
    pass
"""

MODULE_NOT_APPLICABLE = """
import pytest
pytest.skip("not applicable: Linux only", allow_module_level=True)
"""


def run_guarded(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: bool, **files: str
) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    if ci:
        monkeypatch.setenv("CI", "true")
    else:
        monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(**files)
    return pytester.runpytest_subprocess("-p", "tests.ci_guard", "-p", "no:cacheprovider", "-rA")


def test_skips_fail_under_ci_unless_not_applicable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_guarded(pytester, monkeypatch, True, test_skips=SKIPS)
    # A skip in setup (a mark) fails the setup, which pytest counts as an error.
    result.assert_outcomes(failed=2, errors=2, skipped=2)
    for name, reason in [
        ("test_skip_call", "tshark not installed"),
        ("test_skipif_mark", "openssl CLI missing"),
        ("test_skip_mark", "later"),
        ("test_reason_merely_mentions_the_prefix", "lab unavailable (not applicable: is*"),
    ]:
        result.stdout.fnmatch_lines([f"*test_skips.py::{name} - skipped under CI=true: {reason}"])


def test_skips_stay_skips_outside_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_guarded(pytester, monkeypatch, False, test_skips=SKIPS)
    result.assert_outcomes(skipped=6)


def test_xfail_and_xpass_fail_under_ci_unless_not_applicable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_guarded(pytester, monkeypatch, True, test_xfails=XFAILS)
    result.assert_outcomes(failed=3, xfailed=1)
    result.stdout.fnmatch_lines(["*xfailed under CI=true*known bug*"])
    result.stdout.fnmatch_lines(["*xpassed under CI=true*known bug, since fixed*"])
    result.stdout.fnmatch_lines(["*xfailed under CI=true*flaky on this kernel*"])


def test_xfail_is_xfail_outside_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_guarded(pytester, monkeypatch, False, test_xfails=XFAILS)
    result.assert_outcomes(xfailed=3, xpassed=1)


@pytest.mark.parametrize(
    ("source", "reason"),
    [(MODULE_SKIP, "corpus missing"),
     (MODULE_IMPORTORSKIP, "could not import 'no_such_module_for_the_guard_test'")],
)  # fmt: skip
def test_module_level_skip_fails_collection_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str, reason: str
) -> None:
    result = run_guarded(pytester, monkeypatch, True, test_module=source)
    assert result.ret != pytest.ExitCode.OK
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*module skipped under CI=true: {reason}*"])


@pytest.mark.parametrize("source", [MODULE_SKIP, MODULE_IMPORTORSKIP])
def test_module_level_skip_skips_outside_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    result = run_guarded(pytester, monkeypatch, False, test_module=source)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.assert_outcomes(skipped=1)


def test_module_level_not_applicable_skip_stays_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_guarded(pytester, monkeypatch, True, test_module=MODULE_NOT_APPLICABLE,
                         test_other="def test_runs():\n    pass\n")  # fmt: skip
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=1)
