"""Shared fixtures of the HEAR tests (the tiny ``loud`` task is in ``tests/conftest.py``)."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matrices: one torch thread avoids thread contention on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
