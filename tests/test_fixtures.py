"""The fixture copies in tests/fixtures are the ones in ../shared/fixtures (when it is present)."""

import filecmp

import pytest
from helpers import FIXTURES, SHARED_FIXTURES


def _shared_files():
    if not SHARED_FIXTURES.is_dir():
        return []
    return sorted(p.relative_to(SHARED_FIXTURES) for p in SHARED_FIXTURES.rglob("*") if p.is_file())


@pytest.mark.skipif(
    not SHARED_FIXTURES.is_dir(), reason="../shared/fixtures is absent (user clone)"
)
@pytest.mark.parametrize("relative_path", _shared_files(), ids=str)
def test_fixture_copy_is_identical_to_shared(relative_path):
    local = FIXTURES / relative_path
    assert local.is_file(), f"{relative_path} is in ../shared/fixtures but not in tests/fixtures"
    assert filecmp.cmp(local, SHARED_FIXTURES / relative_path, shallow=False)


def test_fixtures_stay_small():
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert total < 16 * 2**20, f"tests/fixtures holds {total / 2**20:.1f} MiB; keep it under 16 MiB"
