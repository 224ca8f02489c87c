"""The route table and what each layer derives from it; the one Host reading."""

from __future__ import annotations

import bottle
import pytest

from netatmo_exporter.adapters.web.http_policy import (
    ANY_HOST_PATHS,
    BODY_LIMITS,
    MAX_BODY_BYTES,
    ROUTES,
    UNAUTHENTICATED_PATHS,
    Host,
    parse_host,
    parse_origin,
)


def test_the_table_says_which_route_takes_a_body_answers_any_host_and_skips_the_password(
) -> None:
    assert BODY_LIMITS == {("POST", "/auth/settoken"): 8192}
    assert ANY_HOST_PATHS == {"/metrics", "/-/healthy", "/-/ready", "/version",
                              "/static/style.css"}
    assert UNAUTHENTICATED_PATHS == {"/-/healthy"}
    assert [route.path for route in ROUTES if route.outside_bottle] == ["/metrics"]
    assert len({route.name for route in ROUTES}) == len(ROUTES)
    assert len({(route.method, route.path) for route in ROUTES}) == len(ROUTES)


def test_bottles_own_body_limit_is_above_ours_so_ours_is_the_one_that_acts() -> None:
    # Without this, a form bottle refuses would answer bottle's 413 page, not ours; the
    # limit is a process-wide class attribute, which we read and never set.
    assert bottle.BaseRequest.MEMFILE_MAX > MAX_BODY_BYTES


@pytest.mark.parametrize(("header", "host"), [
    ("nas", Host("nas", None)),
    ("NAS.Example.:9210", Host("nas.example", 9210)),
    (" 192.168.1.5:80 ", Host("192.168.1.5", 80)),
    ("[::1]:9210", Host("::1", 9210)),
    ("[FE80::1]", Host("fe80::1", None)),
    ("nas:", Host("nas", None)),
    ("", None),
    (":9210", None),
    ("nas:port", None),
    ("nas:+80", None),
    ("nas:\u0663", None),
    ("::1", None),
    ("[::1", None),
    ("[::1]9210", None),
    ("[::1]:x", None),
    (".", None),
])
def test_a_host_header_is_read_one_way(header: str, host: Host | None) -> None:
    assert parse_host(header) == host


def test_a_host_gives_back_a_netloc_a_browser_would_type() -> None:
    assert Host("::1", 9210).netloc == "[::1]:9210"
    assert Host("nas", None).netloc == "nas"


def test_origins_compare_by_scheme_name_and_effective_port() -> None:
    page = parse_origin("http://nas:80/")
    assert page is not None
    assert page.same_as(parse_origin("HTTP://NAS") or page)
    other_scheme = parse_origin("https://nas:80")
    assert other_scheme is not None and not page.same_as(other_scheme)
    assert page.same_authority(other_scheme)
    behind_proxy = parse_origin("https://nas")
    assert behind_proxy is not None and not page.same_authority(behind_proxy)
    assert parse_origin("null") is None
    assert parse_origin("ftp://nas") is None
    with_user = parse_origin("http://user@nas")
    assert with_user is not None and with_user.host == Host("nas", None)
