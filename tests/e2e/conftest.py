import pytest

from tests.e2e.procs import env_for


@pytest.fixture
def env(tmp_path):
    return env_for(tmp_path)
