"""Every command line the README and docs/*.md show still works: none goes stale.

From the fenced shell blocks of README.md and docs/*.md this file takes every command of the
project (``python -m pg2_tf.X``, ``python -m data_prep.X`` / ``benchmarks.X``, ``python
data_prep/x.py``, the ``pg2-*`` console scripts, ``./run_*.sh``) and checks that:

* the module, script or console script exists;
* every ``--flag`` the line shows is a flag of that command (absl commands list theirs with
  ``--helpfull``, argparse ones with ``--help``: each module is asked once, all at once);
* a test runs the command for real, at a tiny size (:data:`RUN_BY` names it), because the help
  text alone does not prove that a command does its job.

It also checks that every ``from pg2_tf... import ...`` of the python blocks imports, that
docs/architecture.md's module table matches the tree, and that every link between the pages
points at a file and a heading that exist.
"""

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ENV, PROJECT_ROOT, console_scripts

ROOT = Path(PROJECT_ROOT)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROJECT_PACKAGES = ("pg2_tf", "data_prep", "benchmarks")

# The test that runs each documented command for real (a tiny model, a fixture's data).
RUN_BY = {
    "pg2_tf.demo": "tests/test_demo.py::test_demo_builds_data_trains_tests_scores_and_exports",
    "pg2_tf.main": "tests/test_main.py::test_test_mode_reproduces_the_original_test_images",
    "pg2_tf.export": "tests/test_export.py::test_plain_tensorflow_process_reproduces_original_test_images",
    "pg2_tf.generate": "tests/test_generate.py::test_command_line_pose_from_gives_rgb_of_a_128x64_inputs_size",
    "pg2_tf.animate": "tests/test_animate.py::test_video_frames_give_an_mp4_and_a_frame_without_person_is_bridged",
    "pg2_tf.keypoints": "tests/test_keypoints.py::test_cli_writes_openpose_json_that_generate_reads_and_a_drawing",
    "pg2_tf.score": "tests/test_score_cli.py::test_cli_json_of_pg2_holds_both_variants_and_writes_both_score_files",
    "pg2_tf.app": "tests/test_app.py::test_python_m_pg2_tf_app_serves_the_page_until_interrupted",
    "data_prep.from_release": "tests/test_from_release.py::test_market_train_pairs_every_two_images_of_a_person_both_orders_and_mirrored",
    "data_prep.convert_market": "tests/test_convert_market.py::test_every_feature_of_every_pair_equals_the_original_record",
    "data_prep.convert_DF": "tests/test_convert_df.py::test_records_have_the_original_deepfashion_features",
    "data_prep.from_annotations": "tests/test_from_annotations.py::test_market_records_follow_the_pairs_file_and_skip_unannotated_images",
    "data_prep.synthetic": "tests/test_synthetic.py::test_command_line_writes_raw_data_and_records",
    "data_prep.read_records": "tests/test_convert_market.py::test_records_keep_the_original_order",
    "data_prep.from_photos": "tests/test_from_photos.py::test_pairs_are_every_ordered_pair_within_a_person_plus_mirrored_copies",
    "data_prep.from_video": "tests/test_from_video.py::test_each_person_of_each_video_is_one_identity_with_crops_at_the_models_size",
    "./run_market_train.sh": "tests/test_main.py::test_run_scripts_say_what_to_download_when_data_is_missing",
    "./run_DF_train.sh": "tests/test_main.py::test_run_scripts_say_what_to_download_when_data_is_missing",
    "./run_market_test.sh": "tests/test_main.py::test_run_market_test_script_tests_and_scores",
    "./run_DF_test.sh": "tests/test_deepfashion.py::test_run_df_test_script_with_an_original_format_checkpoint",
    "benchmarks.step_parity": "tests/test_step_parity.py::test_the_original_schedule_matches_the_original_graph_step_for_step",
    "benchmarks.run": "tests/test_benchmarks.py::test_profile_table_counts_each_op_of_the_profiled_calls",
    "benchmarks.background": "tests/test_background.py::test_the_benchmark_measures_retargeting_and_the_backgrounds_share_of_a_frame",
    "benchmarks.own_footage": "tests/test_own_footage.py::test_the_report_holds_the_issues_keys_and_each_variants_four_scores",
}  # fmt: skip
# Benchmarks whose every run takes minutes even at a tiny size (benchmarks.run at width 4, batch
# 2, one step: 152 s on the 2 shared cores): only their module and flags are checked here.
MEASURED_BY_HAND = {
    "benchmarks.schedules",
    "benchmarks.serving",
    "benchmarks.keypoints",
    "benchmarks.from_release",
}
# Commands that take positional arguments only (no parser: --help would be read as a path).
NO_FLAGS = {"data_prep.read_records"}

SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
PYTHON_MODULE = re.compile(r"(?:^|\s)(?:\S*/)?python3?\s+-m\s+([\w.]+)(.*)$")
PYTHON_SCRIPT = re.compile(r"(?:^|\s)(?:\S*/)?python3?\s+((?:data_prep|benchmarks)/\w+\.py)(.*)$")
CONSOLE_SCRIPT = re.compile(r"^(?:\w+=\S*\s+)*(pg2-[\w-]+)(.*)$")
RUN_SCRIPT = re.compile(r"^(?:\w+=\S*\s+)*(\./run_\w+\.sh)(.*)$")
FLAG = re.compile(r"(?<![\w-])--([A-Za-z][\w-]*)")
HEREDOC = re.compile(r"<<-?\s*'?\"?(\w+)")


def _shell_lines(path: Path):
    """(line number, logical line) of each fenced shell block's lines: continuations joined,
    comments and here-documents left out."""
    fence, heredoc_end, pending, start = None, None, "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        opening = re.match(r"^\s*```(\w*)\s*$", line)
        if fence is None:
            if opening:
                fence = opening.group(1)
            continue
        if line.strip() == "```":
            fence = None
            continue
        if fence not in SHELL_FENCES:
            continue
        if heredoc_end is not None:
            heredoc_end = None if line.strip() == heredoc_end else heredoc_end
            continue
        if not pending:
            start = number
        code = re.sub(r"(^|\s)#.*$", "", line).rstrip()
        if code.endswith("\\"):
            pending += code[:-1] + " "
            continue
        full, pending = pending + code, ""
        found = HEREDOC.search(full)
        if found:
            heredoc_end = found.group(1)
            full = full[: found.start()]
        if full.strip():
            yield start, full


def _commands():
    """Every documented command: dicts of doc, line, text, key (the RUN_BY key), module (whose
    flags apply), path (the file that must exist) and flags (the names shown)."""
    scripts = console_scripts()
    commands = []
    for doc in DOCS:
        for number, line in _shell_lines(doc):
            for segment in re.split(r"\s(?:&&|\|\||;|\|)\s", line):
                segment = segment.strip()
                found = None
                if match := PYTHON_MODULE.search(segment):
                    module, rest = match.groups()
                    if module.split(".")[0] in PROJECT_PACKAGES:
                        path = ROOT / (module.replace(".", "/") + ".py")
                        found = (module, module, path, rest)
                elif match := PYTHON_SCRIPT.search(segment):
                    script, rest = match.groups()
                    module = script[: -len(".py")].replace("/", ".")
                    found = (module, module, ROOT / script, rest)
                elif match := CONSOLE_SCRIPT.match(segment):
                    name, rest = match.groups()
                    module = scripts.get(name, f"<no console script {name}>").split(":")[0]
                    found = (module, module, ROOT / (module.replace(".", "/") + ".py"), rest)
                elif match := RUN_SCRIPT.match(segment):
                    script, rest = match.groups()
                    found = (script, "pg2_tf.main", ROOT / script, rest)
                if found:
                    key, module, path, rest = found
                    commands.append(
                        {
                            "where": f"{doc.relative_to(ROOT)}:{number}",
                            "text": segment,
                            "key": key,
                            "module": module,
                            "path": path,
                            "flags": FLAG.findall(rest),
                        }
                    )
    return commands


COMMANDS = _commands()
IDS = [f"{command['where']} {command['key']}" for command in COMMANDS]


def _help_command(module: str) -> list[str]:
    option = "--helpfull" if module.startswith("pg2_tf.") else "--help"
    return [sys.executable, "-m", module, option]


def _flags_in_help(module: str, text: str) -> set[str]:
    """The flags a command's help lists (absl: ``  --name:`` / ``  --[no]name:``; argparse: the
    ``usage:`` block)."""
    if module.startswith("pg2_tf."):
        names = set()
        for negatable, name in re.findall(r"^\s*(?:-\?,)?--(\[no\])?(\w+):", text, re.M):
            names.add(name)
            if negatable:
                names.add(f"no{name}")
        return names
    usage = text.split("usage:", 1)[-1].split("\n\n", 1)[0]
    return set(FLAG.findall(usage))


@pytest.fixture(scope="module")
def defined_flags() -> dict:
    """{module: the flags it defines}, each documented module asked once, all at once."""
    modules = sorted(
        {c["module"] for c in COMMANDS if c["path"].is_file() and c["module"] not in NO_FLAGS}
    )
    running = {
        module: subprocess.Popen(
            _help_command(module),
            cwd=PROJECT_ROOT,
            env=ENV,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for module in modules
    }
    flags = {module: set() for module in NO_FLAGS}
    for module, process in running.items():
        out, err = process.communicate(timeout=120)
        flags[module] = _flags_in_help(module, out)
        assert flags[module], f"{module}: no flags in its help\n{out[-2000:]}\n{err[-2000:]}"
    return flags


def test_the_docs_show_commands_of_every_kind():
    keys = {command["key"] for command in COMMANDS}
    for prefix in ("pg2_tf.", "data_prep.", "benchmarks.", "./run_"):
        assert any(key.startswith(prefix) for key in keys), prefix
    assert any(command["text"].startswith("pg2-export") for command in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_the_command_exists_and_takes_the_flags_shown(command, defined_flags):
    assert command["path"].is_file(), f"{command['where']}: no {command['path']}"
    if command["key"].startswith("./"):
        assert command["path"].stat().st_mode & 0o111, f"{command['path']} is not executable"
    unknown = sorted(set(command["flags"]) - defined_flags[command["module"]])
    assert not unknown, f"{command['where']}: {command['module']} has no flag {unknown}"


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_every_documented_command_is_run_by_a_test():
    documented = {command["key"] for command in COMMANDS}
    missing = sorted(documented - set(RUN_BY) - MEASURED_BY_HAND)
    assert not missing, f"documented, run by no test (add one to RUN_BY): {missing}"
    assert all(key.startswith("benchmarks.") for key in MEASURED_BY_HAND)
    for key, test in RUN_BY.items():
        file, function = test.split("::")
        assert function in _test_functions(ROOT / file), f"{key}: {test} does not exist"
        name = key.rsplit(".", 1)[-1].removeprefix("./").removesuffix(".sh")
        text = (ROOT / file).read_text(encoding="utf-8")
        assert name in text or name.replace("_", "") in text.lower(), (key, file)


def test_the_mapping_names_only_documented_commands():
    documented = {command["key"] for command in COMMANDS}
    assert not sorted((set(RUN_BY) | MEASURED_BY_HAND) - documented)


# ---- Python shown in the docs -------------------------------------------------------------------


def _python_imports():
    """(where, module, names) of every ``from pg2_tf... import ...`` line of the python blocks."""
    found = []
    for doc in DOCS:
        fence = None
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip().startswith("```"):
                fence = line.strip()[3:] if fence is None else None
                continue
            match = re.match(r"^\s*from (pg2_tf[\w.]*) import ([\w, ]+)$", line)
            if fence == "python" and match:
                names = [name.strip() for name in match.group(2).split(",")]
                found.append((f"{doc.relative_to(ROOT)}:{number}", match.group(1), names))
    return found


PYTHON_IMPORTS = _python_imports()


@pytest.mark.parametrize(
    "where, module, names", PYTHON_IMPORTS, ids=[where for where, _, _ in PYTHON_IMPORTS]
)
def test_every_import_the_docs_show_works(where, module, names):
    imported = importlib.import_module(module)
    for name in names:
        assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), (
            f"{where}: {module} has no {name}"
        )


# ---- docs/architecture.md's module table -----------------------------------------------------


def _modules_in_the_tree() -> set[str]:
    return {
        str(path.relative_to(ROOT))
        for package in ("pg2_tf", "data_prep")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "__init__.py"
    }


def _modules_in_the_table() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("\n## Modules", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([\w/]+\.py)`", row.split(" | ")[0])}


def test_the_architecture_table_lists_every_module_and_only_those():
    tree, table = _modules_in_the_tree(), _modules_in_the_table()
    assert not sorted(tree - table), "modules missing from docs/architecture.md's table"
    assert not sorted(table - tree), "docs/architecture.md's table names modules that do not exist"


# ---- links between the pages -----------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(title) for title in re.findall(r"^#{1,6}\s+(.+)$", text, re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=[str(doc.relative_to(ROOT)) for doc in DOCS])
def test_every_link_points_at_a_file_and_heading_that_exist(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"\w+://", target):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: broken links {broken}"
