"""The machine's names under its DNS search domains, read from a resolv.conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from netatmo_exporter.adapters.web.host_names import address_towards, own_names, search_domains
from netatmo_exporter.adapters.web.host_policy import HostPolicy


def resolv_conf(tmp_path: Path, text: str) -> str:
    path = tmp_path / "resolv.conf"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("text", "domains"), [
    ("nameserver 192.168.178.1\nsearch fritz.box\n", ("fritz.box",)),
    ("domain home.arpa\nsearch lan Home.Arpa. corp.example # a comment\n",
     ("home.arpa", "lan", "corp.example")),
    ("# search commented.out\nsearch .\nsearch bad_name -x.lan ok.lan ; rest\n", ("ok.lan",)),
    ("nameserver 127.0.0.53\noptions edns0 trust-ad\n", ()),
    ("search " + " ".join(f"d{i}.lan" for i in range(12)) + "\n",
     tuple(f"d{i}.lan" for i in range(8))),
])
def test_search_and_domain_lines(tmp_path: Path, text: str, domains: tuple[str, ...]) -> None:
    assert search_domains(resolv_conf(tmp_path, text)) == domains


def test_no_resolv_conf_means_no_domains(tmp_path: Path) -> None:
    assert search_domains(str(tmp_path / "absent")) == ()


def test_own_names_under_each_domain() -> None:
    assert own_names("NAS", ("fritz.box", "lan")) == ("nas", "nas.local", "nas.fritz.box",
                                                      "nas.lan")
    assert own_names("nas.home.arpa.", ("home.arpa",)) == ("nas", "nas.local",
                                                           "nas.home.arpa")
    assert own_names("", ("lan",)) == ()


def test_the_pages_answer_to_the_name_the_router_gave(tmp_path: Path) -> None:
    names = own_names("nas", search_domains(resolv_conf(tmp_path, "search fritz.box\n")))
    policy = HostPolicy("127.0.0.1:9210", (), names)

    assert policy.allows("nas.fritz.box:9210")
    assert policy.allows("NAS.local")
    assert not policy.allows("nas.fritz.box.attacker.example")
    assert not policy.allows("fritz.box")
    assert policy.names == ("127.0.0.1", "localhost", "nas", "nas.local", "nas.fritz.box")


@pytest.mark.parametrize(("client", "address"), [
    ("127.0.0.1", "127.0.0.1"),
    ("127.0.0.7", "127.0.0.1"),
    ("::1", "::1"),
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("not an address", None),
    ("", None),
])
def test_the_address_a_request_came_in_on(client: str, address: str | None) -> None:
    assert address_towards(client) == address


@pytest.mark.parametrize(("host", "allowed"), [
    ("app.localhost", True),
    ("a-b.c9.localhost:9210", True),
    ("localhost.", True),
    ("evil.com#.localhost", False),
    ("a_b.localhost", False),
    ("-x.localhost", False),
    ("x-.localhost", False),
    ("a..localhost", False),
    ("a b.localhost", False),
    (("a" * 64) + ".localhost", False),
    (".".join(["a" * 60] * 5) + ".localhost", False),
])
def test_names_under_localhost_are_valid_dns_names(host: str, allowed: bool) -> None:
    assert HostPolicy("", (), ()).allows(host) is allowed
