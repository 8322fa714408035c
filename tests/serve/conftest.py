"""One local Ray instance (2 CPUs) for every test under tests/serve/, started when the first one needs it.

At the end of the session it is shut down and must leave no Ray process behind.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    """The shared local Ray instance: a ``RaySession`` (address, session folder)."""
    from segdeploy.serve.cluster import leftover_processes, ray_session

    with ray_session(num_cpus=2) as session:
        yield session
        from ray import serve

        serve.shutdown()
    assert leftover_processes(session.session_dir) == [], "Ray processes outlived ray.shutdown()"
