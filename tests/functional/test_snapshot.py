"""The in-memory channel snapshot and verified-token cache stay correct across processes.

Two apps on one root (each with its own core, connections and caches: what two processes
have) and a change made by a real second process: each change is seen on the very next
request, because every process checks the access generation (one stat) per request.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from webtest import TestApp

from repoproxy.builtin.tokenauth import VerifiedTokens
from repoproxy.domain.channels import create_channel, update_channel
from repoproxy.domain.tokens import parse_id, revoke_token
from repoproxy.models import Identity
from repoproxy.testing.fixtures import make_token


@pytest.fixture
def other(settings: dict[str, Any], services: Any) -> Iterator[TestApp]:
    """A second app on the same root, as another worker process would have."""
    from repoproxy.domain.core import load_core
    from repoproxy.web.app import make_app

    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    core = load_core(settings, env)
    yield TestApp(make_app(core))
    core.close()


def in_another_process(root: Path, code: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    script = textwrap.dedent("""
        from repoproxy.domain.core import load_core
        core = load_core({"repoproxy.root": ROOT})
    """).replace("ROOT", repr(str(root))) + textwrap.dedent(code) + "\ncore.close()\n"
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)


def test_channel_changes_are_seen_by_the_other_app_at_once(
        services: Any, testapp: TestApp, other: TestApp) -> None:
    create_channel(services, "seen")
    other.get("/seen/noarch/repodata.json", status=200)  # the other app's snapshot is warm
    create_channel(services, "later")
    other.get("/later/noarch/repodata.json", status=200)
    update_channel(services, "seen", privacy="private")
    other.get("/seen/noarch/repodata.json", status=401)
    update_channel(services, "seen", privacy="public")
    other.get("/seen/noarch/repodata.json", status=200)


def test_a_change_by_another_process_is_seen_on_the_next_request(
        services: Any, testapp: TestApp, root: Path) -> None:
    create_channel(services, "cross")
    testapp.get("/cross/noarch/repodata.json", status=200)
    in_another_process(root, """
        from repoproxy.domain.channels import update_channel
        update_channel(core, "cross", privacy="private")
    """)
    testapp.get("/cross/noarch/repodata.json", status=401)
    in_another_process(root, """
        from repoproxy.domain.channels import remove_channel
        remove_channel(core, "cross")
    """)
    testapp.get("/cross/noarch/repodata.json", status=401)


def test_a_token_revoked_elsewhere_is_refused_on_the_next_request(
        services: Any, testapp: TestApp, other: TestApp, root: Path) -> None:
    create_channel(services, "priv", privacy="private")
    first = make_token(services, "first", channels=["priv"])
    second = make_token(services, "second", channels=["priv"])
    for app in (testapp, other):  # verified once, then served from each app's cache
        for token in (first, second):
            for _ in range(2):
                app.get("/priv/noarch/repodata.json",
                        headers={"Authorization": f"Bearer {token}"}, status=200)
    revoke_token(services, parse_id(first) or "")  # in this process, seen by the other app
    other.get("/priv/noarch/repodata.json", headers={"Authorization": f"Bearer {first}"},
              status=401)
    in_another_process(root, f"""
        from repoproxy.domain.tokens import revoke_token
        revoke_token(core, {parse_id(second)!r})
    """)
    for app in (testapp, other):
        for token in (first, second):
            app.get("/priv/noarch/repodata.json", headers={"Authorization": f"Bearer {token}"},
                    status=401)


def test_an_expired_token_leaves_the_cache() -> None:
    cache = VerifiedTokens()
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
    cache.put("a", 1, None, Identity(name="token:a", kind="token", expires=past))
    cache.put("b", 1, None, Identity(name="token:b", kind="token", expires=future))
    assert cache.get("a", 1) is None
    assert cache.get("b", 1) is not None
    assert cache.get("b", 2) is None  # the generation moved: verified again


def test_the_cache_is_bounded() -> None:
    cache = VerifiedTokens()
    for i in range(VerifiedTokens.MAX + 10):
        cache.put(str(i), 1, None, Identity(name=f"token:{i}", kind="token"))
    assert cache.get("0", 1) is None
    assert cache.get(str(VerifiedTokens.MAX + 9), 1) is not None
