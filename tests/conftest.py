"""Shared test helpers: fixture locations and quiet TensorFlow logging."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from helpers import MARKET_RAW, MARKET_TF1, record_batches  # noqa: E402


@pytest.fixture(scope="session")
def market_tf1_dir() -> pathlib.Path:
    """The original graph's checkpoint, records and outputs (copied from ../shared/fixtures)."""
    return MARKET_TF1


@pytest.fixture(scope="session")
def market_raw_dir() -> pathlib.Path:
    """The raw Market layout and the original converter's records for it."""
    return MARKET_RAW


@pytest.fixture(scope="session")
def reference_outputs(market_tf1_dir):
    """The original graph's outputs on the 24 fixture records, as a dict of numpy arrays."""
    import numpy as np

    with np.load(market_tf1_dir / "reference_outputs.npz") as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="session")
def fixed_batch(market_tf1_dir):
    """The first 4 fixture records as one batch (dict of tensors, as pg2_tf.records.reader yields)."""
    return next(iter(record_batches(market_tf1_dir / "test_data", "market", 4)))


@pytest.fixture(scope="session")
def blazepose_model_dir() -> str:
    """The cached BlazePose model folder (model_files.blazepose_dir()), fetched once when absent.

    The fetch needs PyPI; without it the test is skipped, except in CI (``CI`` set), where it fails.
    """
    from pg2_tf.core.errors import DataError
    from pg2_tf.people import model_files

    try:
        return model_files.fetch_model()
    except DataError as error:
        if os.environ.get("CI"):
            pytest.fail(f"BlazePose model files could not be fetched: {error}")
        pytest.skip(f"BlazePose model files not cached and not downloadable: {error}")


@pytest.fixture(scope="session")
def market_saved_model(tmp_path_factory, market_tf1_dir) -> str:
    """The fixture's original checkpoint exported once as a SavedModel (128x64, width 8)."""
    from pg2_tf.serving import export_lib

    return export_lib.export_from_checkpoint(
        market_tf1_dir / "tf1_checkpoint",
        tmp_path_factory.mktemp("export") / "market",
        model=1,
        img_H=128,
        img_W=64,
        conv_hidden_num=8,
        z_num=64,
    )


@pytest.fixture(scope="session")
def blazepose_estimator(blazepose_model_dir):
    """One pg2_tf.people.blazepose.KeypointEstimator on the cached model files, for every test."""
    from pg2_tf.people import blazepose

    return blazepose.KeypointEstimator(blazepose_model_dir)


# The longest test files, longest first (seconds on 2 cores, docs/performance.md "The demo and
# the test suite"). pytest-xdist hands each worker a whole file (--dist loadfile) in collection
# order: starting with the longest lets the short files fill the end of the run on both workers,
# instead of one worker finishing a long file alone.
LONGEST_FIRST = (
    "test_train.py",
    "test_distribute.py",
    "test_resume.py",
    "test_main.py",
    "test_mixed_precision.py",
    "test_app.py",
    "test_demo.py",
    "test_deepfashion.py",
    "test_export.py",
    "test_generate.py",
    "test_step_parity.py",
)


def pytest_collection_modifyitems(items):
    """Runs the longest files first (a stable sort: each file keeps its own order)."""
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
