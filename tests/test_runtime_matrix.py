"""The runtime matrix: the first runtime in --runtimes runs every lab test, the others
those marked every_runtime, and --full-matrix runs them all everywhere."""

from __future__ import annotations

import pytest

TESTS = """
import pytest

def test_everywhere_by_mark(lab_runtime): pass
test_everywhere_by_mark = pytest.mark.every_runtime(test_everywhere_by_mark)

def test_reference_only(lab_runtime): pass

@pytest.mark.parametrize("topo", [pytest.param("a", marks=pytest.mark.every_runtime), "b"])
def test_by_param(topo, lab_runtime): pass

def test_no_lab(): pass
"""


def collected(pytester: pytest.Pytester, *args: str) -> set[str]:
    pytester.makepyfile(test_matrix=TESTS)
    result = pytester.runpytest("--collect-only", "-q", *args)
    return {line.split("::", 1)[1] for line in result.outlines if "::" in line}


def test_other_runtimes_run_only_the_marked_tests(pytester: pytest.Pytester) -> None:
    assert collected(pytester, "--runtimes", "netns,docker") == {
        "test_everywhere_by_mark[netns]",
        "test_everywhere_by_mark[docker]",
        "test_reference_only[netns]",
        "test_by_param[netns-a]",
        "test_by_param[docker-a]",
        "test_by_param[netns-b]",
        "test_no_lab",
    }


def test_the_left_out_are_counted_as_deselected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_matrix=TESTS)
    result = pytester.runpytest("--collect-only", "-q", "--runtimes", "netns,docker")
    result.stdout.fnmatch_lines(["*7/9 tests collected (2 deselected)*"])


def test_full_matrix_runs_everything_everywhere(pytester: pytest.Pytester) -> None:
    assert len(collected(pytester, "--runtimes", "netns,docker", "--full-matrix")) == 9


def test_one_runtime_runs_everything_on_it(pytester: pytest.Pytester) -> None:
    names = collected(pytester, "--runtimes", "docker")
    assert names == {
        "test_everywhere_by_mark[docker]",
        "test_reference_only[docker]",
        "test_by_param[docker-a]",
        "test_by_param[docker-b]",
        "test_no_lab",
    }


def test_the_run_says_which_tests_each_runtime_ran(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_matrix=TESTS)
    result = pytester.runpytest("-q", "--runtimes", "netns,docker", "-k", "no_lab")
    result.stdout.fnmatch_lines(["vpnlab: every lab test ran on netns; on docker only those*"])
