"""The running exporter answers exactly the route table: every route with its method, HEAD
wherever GET, the others refused; each layer's policy as the table says."""

from __future__ import annotations

from pathlib import Path

import httpx

from netatmo_exporter.adapters.web.http_policy import ROUTES
from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.integration.test_web_auth import Web, start_web, wait_until_up
from tests.support.harness import seed_token


def _send(web: Web, method: str, path: str, host: str = "127.0.0.1") -> httpx.Response:
    return httpx.request(method, web.url + path, headers={"Host": host}, timeout=10.0,
                         follow_redirects=False)


def test_every_route_of_the_table_answers_and_nothing_else(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path) -> None:
    seed_token(cloud, token_path)
    debug = start_web(web_factory, cloud, token_path, "--debug-handlers")
    plain = start_web(web_factory, cloud, token_path)
    for web in (debug, plain):
        wait_until_up(web)

    for route in ROUTES:
        answer = _send(debug, route.method, route.path)
        # 4xx here are the routes' own refusals (an empty form, a missing state), pages
        # of ours, not the 404/405 of a route bottle does not know.
        assert answer.status_code not in (404, 405), route
        if route.method == "GET":
            head = _send(debug, "HEAD", route.path)
            assert head.status_code == answer.status_code, route
            assert head.content == b"", route
        other = "POST" if route.method == "GET" else "GET"
        assert _send(debug, other, route.path).status_code in (405, 413), route
        foreign = _send(debug, route.method, route.path, host="rebind.example")
        assert (foreign.status_code != 421) == route.any_host, route
        if route.debug:
            assert _send(plain, route.method, route.path).status_code == 404, route
    assert _send(debug, "GET", "/not-a-route").status_code == 404
