"""One test tier: pytest's ``slow`` marker decides what is slow, for pytest and for Bazel."""

import ast

from tests.conftest import REPO


def _slow_marks(path) -> tuple[int, int]:
    """``(tests, tests marked slow)`` of a test file: functions ``test_*`` with a
    ``pytest.mark.slow`` decorator, or all of them under a module-level ``pytestmark``."""
    tree = ast.parse(path.read_text())
    whole = any(isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "pytestmark"
                and "pytest.mark.slow" in ast.unparse(node.value) for node in tree.body)
    tests = [node for node in tree.body if isinstance(node, ast.FunctionDef)
             and node.name.startswith("test_")]
    slow = [node for node in tests
            if whole or any(ast.unparse(d) == "pytest.mark.slow" for d in node.decorator_list)]
    return len(tests), len(slow)


def _build_list(name: str) -> list[str]:
    tree = ast.parse((REPO / "tests" / "BUILD").read_text())
    return next(ast.literal_eval(node.value) for node in tree.body
                if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == name)


def test_bazel_tags_the_files_whose_tests_are_marked_slow():
    marks = {path.name: _slow_marks(path) for path in sorted((REPO / "tests").glob("test_*.py"))}
    all_slow = sorted(name for name, (tests, slow) in marks.items() if slow and slow == tests)
    some_slow = sorted(name for name, (tests, slow) in marks.items() if 0 < slow < tests)
    assert sorted(_build_list("ALL_SLOW")) == all_slow, "update ALL_SLOW in tests/BUILD"
    assert sorted(_build_list("SOME_SLOW")) == some_slow, "update SOME_SLOW in tests/BUILD"
    assert all_slow or some_slow
