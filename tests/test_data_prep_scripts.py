"""The original's habit: ``python data_prep/convert_market.py ...`` runs from a clone, uninstalled."""

import os
import subprocess
import sys
import textwrap

import pytest

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs a script as `python <path> --help` would (sys.path[0] = its folder, no PYTHONPATH: -I),
# then says which data_prep the script imported.
_RUN_AS_FILE = textwrap.dedent(
    """
    import runpy, sys
    script = sys.argv[1]
    sys.argv = [script, "--help"]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as end:
        assert end.code in (0, None), end.code
    print("data_prep from", sys.modules["data_prep.common"].__file__)
    """
)


@pytest.mark.parametrize(
    "script", ["convert_market.py", "convert_DF.py", "from_annotations.py", "from_photos.py"]
)
def test_a_script_run_by_its_path_imports_its_own_project(script, tmp_path):
    path = os.path.join(PROJECT_ROOT, "data_prep", script)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, "-I", "-c", _RUN_AS_FILE, path],
        cwd=tmp_path,  # not the project folder: the script finds it by its own path
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    own_common = os.path.join(PROJECT_ROOT, "data_prep", "common.py")
    assert done.stdout.strip().splitlines()[-1] == f"data_prep from {own_common}"
