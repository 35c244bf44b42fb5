"""The test suite, a package: modules import shared helpers as `tests.support.<module>`."""

import pytest

# The helpers' plain asserts (e.g. `signup` expecting 201) report their operands as in a test module.
pytest.register_assert_rewrite("tests.support")
