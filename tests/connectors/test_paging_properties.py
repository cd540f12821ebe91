"""Property test, every platform: orders arriving while a download pages are never skipped or repeated.

One mechanism for all platforms: hypothesis draws how many orders the store has, how small the
pages are, after which pages new orders arrive (through the sandbox's ``add_order``, i.e. a customer
checking out mid-download) and after which page the worker "crashes" and resumes from the last
checkpoint it saved. Whatever the draw:

- one uninterrupted pass never yields the same order twice (orders only arrive, none changes);
- every order that existed when the download started is in the first pass;
- the first pass plus the next run from its final checkpoint hold every order the store has;
- resuming from any page's checkpoint and running on loses nothing.

Each example gets a fresh sandbox (3DCart's client-side leaky bucket is per token, so a fresh store
also means a fresh bucket and no waiting). Page sizes are shrunk so a handful of orders spans pages.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Connector, ConnectorOptions
from connectors.registry import build_connector
from connectors.sandbox import SandboxServer, make_sandbox

CASES = [
    pytest.param(("xcart", {"flavour": "addon"}), id="xcart-5.4-addon"),
    pytest.param(("xcart", {"flavour": "builtin"}), id="xcart-5.5-builtin"),
    pytest.param(("threedcart", {}), id="threedcart"),
    pytest.param(("opencart", {"family": "2.3"}), id="opencart-2.3"),
    pytest.param(("opencart", {"family": "3.0.3"}), id="opencart-3.0.3"),
    pytest.param(("opencart", {"family": "4.0"}), id="opencart-4.0"),
    pytest.param(("opencart", {"family": "4.1"}), id="opencart-4.1"),
]


@contextlib.contextmanager
def small_order_pages(connector: Connector, size: int) -> Iterator[None]:
    """Make ``connector`` ask for ``size`` orders a page, whichever knob its platform reads."""
    connector.capabilities = dataclasses.replace(connector.capabilities, order_page_size=size)  # type: ignore[misc]
    if hasattr(connector, "order_page_size"):  # 3DCart copies the capability when built
        connector.order_page_size = size  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        if connector.platform == "xcart":  # X-Cart's page sizes are module constants
            stack.enter_context(mock.patch("connectors.xcart.connector.ORDER_PAGE_SIZE", size))
            stack.enter_context(mock.patch("connectors.xcart.connector.BUILTIN_PAGE_SIZE", size))
        yield


@contextlib.contextmanager
def running_store(platform: str, options: dict[str, Any], orders: int) -> Iterator[tuple[Any, Connector]]:
    app = make_sandbox(platform, **options)
    app.seed(4, orders, 3, orders)
    with SandboxServer(app) as _server:
        connector = build_connector(
            platform,
            app.connector_store_url(),
            app.connector_credentials(),
            app.connector_settings(),
            options=ConnectorOptions(
                allow_private_hosts=True, timeout=10.0, max_retries=0, **app.connector_options()
            ),
        )
        try:
            yield app, connector
        finally:
            connector.close()


def paged(
    connector: Connector, checkpoint: str | None, arrivals: dict[int, int], app: Any, stop_after: int | None
) -> tuple[list[list[str]], list[str], list[str]]:
    """Run one download; after page ``i`` place ``arrivals[i]`` new orders; stop after ``stop_after``.

    Returns (order ids per page, checkpoint per page, ids of the orders placed meanwhile).
    """
    pages: list[list[str]] = []
    checkpoints: list[str] = []
    placed: list[str] = []
    for index, page in enumerate(connector.fetch_orders(checkpoint)):
        pages.append([order.external_id for order in page.orders])
        checkpoints.append(page.checkpoint)
        for _ in range(arrivals.get(index, 0)):
            placed.append(app.add_order())
        if stop_after is not None and index >= stop_after:
            break
    return pages, checkpoints, placed


@pytest.mark.parametrize("case", CASES)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    orders=st.integers(min_value=0, max_value=14),
    page_size=st.integers(min_value=1, max_value=6),
    arrivals=st.dictionaries(st.integers(min_value=0, max_value=5), st.integers(min_value=1, max_value=3)),
    crash_after=st.one_of(st.none(), st.integers(min_value=0, max_value=4)),
)
def test_no_order_skipped_or_repeated_while_orders_arrive(
    case: tuple[str, dict[str, Any]],
    orders: int,
    page_size: int,
    arrivals: dict[int, int],
    crash_after: int | None,
) -> None:
    platform, options = case
    with (
        running_store(platform, options, orders) as (app, connector),
        small_order_pages(connector, page_size),
    ):
        existing = app.order_count()

        # one uninterrupted pass while customers check out
        pages, checkpoints, placed = paged(connector, None, arrivals, app, None)
        first = [order_id for page in pages for order_id in page]
        assert len(first) == len(set(first)), f"an order came twice in one pass: {first}"
        assert len(set(first) - set(placed)) == existing, "an order that existed before the pass was skipped"
        assert checkpoints, "a download must yield at least one page (with a checkpoint)"

        # the next run from the final checkpoint brings whatever arrived too late for this pass
        later_pages, _, _ = paged(connector, checkpoints[-1], {}, app, None)
        later = {order_id for page in later_pages for order_id in page}
        assert set(placed) <= set(first) | later, "an order placed during the pass was lost"
        assert len(set(first) | later) == app.order_count()

        # a worker that dies after page k resumes from page k's checkpoint and still loses nothing
        if crash_after is not None:
            before, saved, more = paged(connector, None, arrivals, app, crash_after)
            resumed, _, _ = paged(connector, saved[-1], {}, app, None)
            seen = {order_id for page in before + resumed for order_id in page}
            assert set(more) <= seen
            assert len(seen) == app.order_count(), "resuming from a saved checkpoint skipped an order"
