"""Shared test helpers: fixture locations and quiet TensorFlow logging."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

TESTS_DIR = pathlib.Path(__file__).resolve().parent
FIXTURES = TESTS_DIR / "fixtures"
# ../shared beside the project root, present in CI, absent in a user's clone.
SHARED_FIXTURES = TESTS_DIR.parent.parent / "shared" / "fixtures"

MARKET_TF1 = FIXTURES / "market_tf1"
MARKET_RAW = FIXTURES / "market_raw"


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
    """The first 4 fixture records as one batch (dict of tensors, as pg2_tf.data yields)."""
    from pg2_tf import data

    dataset = data.make_dataset(
        str(market_tf1_dir / "test_data"),
        "test",
        kind="market",
        img_H=128,
        img_W=64,
        batch_size=4,
        is_train=False,
    )
    return next(iter(dataset))


@pytest.fixture(scope="session")
def blazepose_model_dir() -> str:
    """The cached BlazePose model folder (pg2_tf.keypoints.model_dir()), fetched once when absent.

    The fetch needs PyPI; without it the test is skipped, except in CI (``CI`` set), where it fails.
    """
    from pg2_tf import keypoints
    from pg2_tf.errors import DataError

    try:
        return keypoints.fetch_model()
    except DataError as error:
        if os.environ.get("CI"):
            pytest.fail(f"BlazePose model files could not be fetched: {error}")
        pytest.skip(f"BlazePose model files not cached and not downloadable: {error}")


@pytest.fixture(scope="session")
def market_saved_model(tmp_path_factory, market_tf1_dir) -> str:
    """The original fixture checkpoint exported as a SavedModel (Market 128x64, conv_hidden_num 8)."""
    from pg2_tf import export

    return export.export_from_checkpoint(
        market_tf1_dir / "tf1_checkpoint",
        tmp_path_factory.mktemp("market_export") / "market",
        model=1,
        img_H=128,
        img_W=64,
        conv_hidden_num=8,
        z_num=64,
    )
