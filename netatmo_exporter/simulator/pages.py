"""HTML pages of the simulated Netatmo authorization server (no JavaScript)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f3f5f8;color:#1b2733;margin:0}
main{max-width:30rem;margin:4rem auto;background:#fff;border-radius:8px;padding:2rem;
box-shadow:0 2px 8px rgba(0,0,0,.1)}
h1{font-size:1.3rem}ul{padding-left:1.2rem}
.actions{display:flex;gap:1rem;margin-top:1.5rem}form{margin:0}
button{font-size:1rem;padding:.6rem 1.4rem;border-radius:4px;border:1px solid #1b6ec2;
cursor:pointer}
#accept{background:#1b6ec2;color:#fff}#refuse{background:#fff;color:#1b6ec2}
.note{font-size:.85rem;color:#5a6b7b}
"""

SCOPE_DESCRIPTIONS = {
    "read_station": "read the data of your Weather Stations",
    "read_homecoach": "read the data of your Healthy Home Coaches",
    "read_thermostat": "read your Netatmo Energy homes: rooms, thermostats, radiator valves "
                       "and relays",
    "write_thermostat": "change your thermostats' set points and schedules",
}


def _page(title: str, content: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{content}"
        '<p class="note">Simulated Netatmo cloud: no real account is involved.</p>'
        "</main></body></html>\n"
    )


def _scope_item(scope: str) -> str:
    description = SCOPE_DESCRIPTIONS.get(scope)
    return scope if description is None else f"{description} ({scope})"


def consent_page(
    app_name: str, scopes: Sequence[str], request_id: str, fields: dict[str, str]
) -> str:
    """The consent screen: two forms, Accept (``id="accept"``) and Refuse (``id="refuse"``)."""
    items = "".join(f'<li data-scope="{escape(s)}">{escape(_scope_item(s))}</li>' for s in scopes)
    hidden = f'<input type="hidden" name="request_id" value="{escape(request_id)}">' + "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )

    def form(decision: str, label: str) -> str:
        return (
            f'<form id="{decision}-form" method="post" action="/oauth2/authorize/decision">'
            f'{hidden}<button type="submit" id="{decision}" name="decision" '
            f'value="{decision}">{label}</button></form>'
        )

    content = (
        f'<h1 id="consent-title">{escape(app_name)} wants to access your Netatmo data</h1>'
        f'<p>This application will be able to:</p><ul id="scopes">{items}</ul>'
        f'<div class="actions">{form("accept", "Accept")}{form("refuse", "Refuse")}</div>'
    )
    return _page("Netatmo - Authorize " + app_name, content)


def error_page(message: str) -> str:
    return _page(
        "Netatmo - Error", f'<h1>Authorization error</h1><p id="error">{escape(message)}</p>'
    )


def redirect_page(location: str) -> str:
    return _page(
        "Redirecting", f'<p>Continue to <a href="{escape(location)}">the application</a>.</p>'
    )


def proxy_error_page(status: int, reason: str) -> str:
    return (
        f"<html>\r\n<head><title>{status} {escape(reason)}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {escape(reason)}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
