"""The suite's skip policy (tests/conftest.py): only a GPU test may skip; any other skip fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FILES = {
    "conftest.py": "from tests.conftest import pytest_configure  # noqa: F401  (the policy under test)\n",
    "pytest.ini": "[pytest]\nmarkers =\n    gpu: needs CUDA\n",
    "test_gpu.py": "import pytest\n\n@pytest.mark.gpu\n@pytest.mark.skipif(True, reason='no CUDA')\n"
                   "def test_on_gpu():\n    pass\n\ndef test_plain():\n    pass\n",
    "test_asset.py": "import pytest\n\ndef test_needs_asset():\n    pytest.skip('asset missing: videos/x.mp4')\n",
    "test_extra.py": "import pytest\n\npytest.importorskip('no_such_extra_mcreid')\n\ndef test_x():\n    pass\n",
    "test_xfail.py": "import pytest\n\n@pytest.mark.xfail(reason='known')\ndef test_known():\n    assert False\n",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("skips")
    for name, text in FILES.items():
        (root / name).write_text(text)
    return root


def run(project: Path, *files: str, allow: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MCREID_ALLOW_SKIPS"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    if allow:
        env["MCREID_ALLOW_SKIPS"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files], cwd=project,
                          env=env, capture_output=True, text=True, timeout=120)


def test_a_gpu_test_skipped_without_a_gpu_and_an_xfail_keep_the_run_green(project):
    result = run(project, "test_gpu.py", "test_xfail.py")
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped, 1 xfailed" in result.stdout
    assert "other than a missing GPU" not in result.stdout


@pytest.mark.parametrize(("file", "reason"), [
    ("test_asset.py", "test_asset.py::test_needs_asset: asset missing: videos/x.mp4"),
    ("test_extra.py", "test_extra.py: could not import 'no_such_extra_mcreid'"),  # skipped at collection
])
def test_any_other_skip_fails_the_run_and_is_named(project, file, reason):
    result = run(project, "test_gpu.py", file)
    assert result.returncode == 1, result.stdout
    assert "skipped for a reason other than a missing GPU" in result.stdout
    assert reason in result.stdout and "the run FAILS" in result.stdout


def test_the_variable_allows_skips_but_still_lists_them(project):
    result = run(project, "test_asset.py", allow=True)
    assert result.returncode == 0, result.stdout
    assert "asset missing" in result.stdout and "allowed by MCREID_ALLOW_SKIPS" in result.stdout


def test_a_real_failure_keeps_its_exit_status(project, tmp_path):
    (project / "test_fails.py").write_text("import pytest\n\ndef test_f():\n    pytest.skip('x')\n\n"
                                           "def test_g():\n    assert False\n")
    assert run(project, "test_fails.py").returncode == 1
