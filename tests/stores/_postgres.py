"""A PostgreSQL server for the store tests: the CI's, or a throwaway one started here.

``RXCHAT_TEST_POSTGRES_DSN`` names a server to use (``.ci/run`` sets it). Without it,
``.ci/pg-cluster`` starts a throwaway cluster on a unix socket in a temporary directory
(as the ``postgres`` user when run as root) and stops it at the end of the session.
If neither works the PostgreSQL tests are skipped with the reason, except under CI
(``CI=true``), where a missing server fails them: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DSN_VARIABLE = "RXCHAT_TEST_POSTGRES_DSN"
CLUSTER_SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "pg-cluster"


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (under CI) for want of a server."""
    message = f"no PostgreSQL server for the store tests: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + f" (CI must run them: set {DSN_VARIABLE})")
    pytest.skip(message + f"; set {DSN_VARIABLE} to run them")


def server_dsn() -> Iterator[str | None]:
    """The DSN of a server for this test session (None and a reason if there is none)."""
    given = os.environ.get(DSN_VARIABLE)
    if given:
        yield given
        return
    if not os.access(CLUSTER_SCRIPT, os.X_OK) or shutil.which("su") is None:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="rxchat-pg-")
    try:
        started = subprocess.run(
            [str(CLUSTER_SCRIPT), "start", directory], capture_output=True, text=True,
            timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        started = None
    try:
        yield started.stdout.strip() if started is not None and started.returncode == 0 else None
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "stop", directory], capture_output=True,
                       timeout=60, check=False)
        shutil.rmtree(directory, ignore_errors=True)


def isolated_dsn(dsn: str) -> Iterator[str]:
    """``dsn`` with its own empty schema first on the search path; dropped afterwards."""
    import psycopg

    schema = f"rxchat_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{dsn} options='-c search_path={schema}'"
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
