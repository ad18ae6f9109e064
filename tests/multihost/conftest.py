from collections.abc import Iterator

import pytest

from tests.multihost.cluster import Cluster, unavailable


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """Started once for the module: Redis, the database, the configuration, hosts A and B."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    started = Cluster(tmp_path_factory.mktemp("multihost"))
    try:
        yield started.start()
    finally:
        started.stop()
