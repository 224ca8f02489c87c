"""What a LAN user meets: the names the pages answer to, a way out of the refusal page that
works, and a status page that reloads itself until the first data is there."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx

from netatmo_exporter.adapters.web.host_names import own_names, search_domains
from netatmo_exporter.simulator import FakeNetatmoCloud, Fault
from tests.integration.test_web_auth import Web, start_web, wait_until_up
from tests.support.harness import seed_token, wait_until

RELOAD = re.compile(r'<meta http-equiv="refresh" content="(\d+)">')


def test_the_status_page_lists_the_names_it_answers_to(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path) -> None:
    web = start_web(web_factory, cloud, token_path, "--web.allowed-hosts", "weather.example")
    names = own_names(socket.gethostname(), search_domains())

    page = httpx.get(web.url + "/", timeout=10.0).text
    listed = re.search(r'<p class="note" id="host-names">(.*?)</p>', page, re.S)

    assert listed is not None
    shown = re.findall(r"<code>([^<]+)</code>", listed.group(1))
    assert set(names) | {"localhost", "weather.example"} <= set(shown)
    for name in names:
        assert httpx.get(web.url + "/", headers={"Host": name}, timeout=10.0).status_code == 200


def test_the_refusal_page_links_to_the_page_by_ip_address(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path) -> None:
    web = start_web(web_factory, cloud, token_path)
    port = web.app.server.server_address[1]

    refused = httpx.get(web.url + "/", headers={"Host": f"nas.unknown.example:{port}"},
                        timeout=10.0)
    link = re.search(r'<a class="button" id="next" href="([^"]+)">', refused.text)

    assert refused.status_code == 421
    assert link is not None and link.group(1) == f"http://127.0.0.1:{port}/"
    assert f"open the page by its IP address: http://127.0.0.1:{port}/." in refused.text
    assert 'href="/">Back to the status page' not in refused.text
    assert httpx.get(link.group(1), timeout=10.0).status_code == 200


def test_the_page_reloads_itself_until_the_first_data_is_there(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path) -> None:
    unauthorized = start_web(web_factory, cloud, token_path)
    assert RELOAD.search(httpx.get(unauthorized.url + "/", timeout=10.0).text) is None

    seed_token(cloud, token_path)
    cloud.inject("getstationsdata", Fault.http_500(), times=None)
    web = start_web(web_factory, cloud, token_path)
    wait_until("authorization", lambda: web.app.tokens.authorized, 10.0)
    waiting = httpx.get(web.url + "/?done=authorized", timeout=10.0).text
    cloud.clear_faults()
    web.app.refresher.loop.wake()
    wait_until_up(web)
    arrived = httpx.get(web.url + "/?done=authorized", timeout=10.0).text

    reload = RELOAD.search(waiting)
    assert reload is not None and 1 <= int(reload.group(1)) <= 10
    assert "No data yet." in waiting
    assert RELOAD.search(arrived) is None
    assert "Maison (Lyon)" in arrived
    # Two modules named "Chambre" in one station: told apart as /metrics tells them apart.
    metrics = httpx.get(web.url + "/metrics", timeout=10.0).text
    for module_id in ("03:00:00:00:00:01", "03:00:00:00:00:02"):
        assert f'module="Chambre ({module_id})"' in metrics
        assert f">Chambre ({module_id})<" in arrived
