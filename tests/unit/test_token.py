"""Token lifecycle rules: when to use, refresh or ask for a new authorization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from netatmo_exporter.domain.authorization.token import (
    Token,
    TokenAction,
    access_token_valid,
    refresh_margin,
    supersedes,
    token_action,
)

NOW = 1_700_000_000.0


def expiring_in(seconds: float, lifetime: float | None = None, access: str = "a",
                refresh: str = "r") -> Token:
    expiry = datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=seconds)
    return Token(access, refresh, expiry, lifetime=lifetime)


@pytest.mark.parametrize(("lifetime", "margin"), [
    (10800.0, 300.0), (3000.0, 300.0), (2000.0, 200.0), (4.0, 0.4), (1.0, 0.1),
    (None, 300.0), (0.0, 300.0), (-5.0, 300.0),
])
def test_refresh_margin_is_min_of_five_minutes_and_a_tenth(
    lifetime: float | None, margin: float
) -> None:
    assert refresh_margin(Token("a", "r", lifetime=lifetime)) == pytest.approx(margin)


@pytest.mark.parametrize(("remaining", "lifetime", "action"), [
    (10000.0, 10800.0, TokenAction.USE),
    (301.0, 10800.0, TokenAction.USE),
    (299.0, 10800.0, TokenAction.REFRESH),
    (3.0, 4.0, TokenAction.USE),
    (0.5, 4.0, TokenAction.USE),
    (0.3, 4.0, TokenAction.REFRESH),
    (-100.0, 10800.0, TokenAction.REFRESH),
])
def test_refresh_due_with_a_margin_scaled_to_the_lifetime(
    remaining: float, lifetime: float, action: TokenAction
) -> None:
    assert token_action(expiring_in(remaining, lifetime), NOW) is action


def test_no_token_needs_authorization() -> None:
    assert token_action(None, NOW) is TokenAction.AUTHORIZE
    assert token_action(Token(), NOW) is TokenAction.AUTHORIZE


def test_refresh_token_only_is_refreshed_at_once() -> None:
    assert token_action(Token(refresh_token="r"), NOW) is TokenAction.REFRESH


def test_missing_expiry_is_refreshed_at_once() -> None:
    assert token_action(Token("a", "r", None), NOW) is TokenAction.REFRESH


def test_expired_access_with_refresh_token_is_refreshed_not_discarded() -> None:
    assert token_action(expiring_in(-86400 * 30), NOW) is TokenAction.REFRESH


def test_access_token_without_refresh_token_is_used_until_it_expires() -> None:
    assert token_action(expiring_in(100, 10800, refresh=""), NOW) is TokenAction.USE
    assert token_action(expiring_in(-1, 10800, refresh=""), NOW) is TokenAction.AUTHORIZE
    assert token_action(Token("a", "", None), NOW) is TokenAction.AUTHORIZE


def test_access_token_validity() -> None:
    assert access_token_valid(expiring_in(10), NOW)
    assert not access_token_valid(expiring_in(-1), NOW)
    assert not access_token_valid(Token(refresh_token="r"), NOW)
    assert not access_token_valid(None, NOW)


def test_grant_sets_expiry_from_expires_in() -> None:
    token = Token.from_grant("a", "r", 10800, NOW, ("read_station",))

    assert token.expires_at() == pytest.approx(NOW + 10800)
    assert token.lifetime == 10800
    assert token.scope == ("read_station",)


def test_repr_shows_no_secret() -> None:
    token = Token("access-secret-value", "refresh-secret-value", None)

    assert "secret-value" not in repr(token)
    assert "secret-value" not in str(token)


def test_without_access_token_keeps_refresh_token() -> None:
    token = expiring_in(1000).without_access_token()

    assert token.refresh_token == "r"
    assert token_action(token, NOW) is TokenAction.REFRESH


def authorized(at: float | None, renewals: int = 0, refresh: str = "r") -> Token:
    when = None if at is None else datetime.fromtimestamp(at, UTC)
    return Token("a-" + refresh, refresh, authorized_at=when, renewals=renewals)


@pytest.mark.parametrize(("theirs", "ours", "wins"), [
    (authorized(NOW + 1, refresh="t"), authorized(NOW, 7), True),  # a newer authorization
    (authorized(NOW, 7), authorized(NOW + 1, refresh="t"), False),  # its older grant renewed
    (authorized(NOW, 3, "t"), authorized(NOW, 2), True),  # the later renewal of one grant
    (authorized(NOW, 2, "t"), authorized(NOW, 3), False),
    (authorized(NOW, 9), authorized(NOW + 5), False),  # the same refresh token is no news
    (authorized(None, refresh="t"), authorized(NOW), True),  # the Go exporter, a copy
    (authorized(NOW, refresh="t"), authorized(None), True),
    (authorized(None, refresh="t"), None, True),
])
def test_the_newest_authorization_wins_then_the_latest_renewal(
        theirs: Token, ours: Token | None, wins: bool) -> None:
    assert supersedes(theirs, ours) is wins
