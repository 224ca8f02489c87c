"""What the status page says, in plain words: times, advice for each failure, and one
row per module. Pure functions of the exporter's state, so they hold no secrets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from netatmo_exporter.domain.authorization.tokens import AuthState, TokenStatus
from netatmo_exporter.domain.call_policy import BudgetWaitState
from netatmo_exporter.domain.weather.labels import label_modules
from netatmo_exporter.domain.weather.model import Module, Snapshot, Station, is_stale
from netatmo_exporter.domain.weather.refresher import RefreshSettings, RefreshStatus
from netatmo_exporter.domain.weather.schedule import DeviceCadence

MODULE_KINDS = {
    "NAMain": "Indoor base",
    "NAModule1": "Outdoor",
    "NAModule2": "Wind gauge",
    "NAModule3": "Rain gauge",
    "NAModule4": "Extra indoor",
    "NHC": "Home Coach",
}


@dataclass(frozen=True)
class Advice:
    problem: str
    fix: str


@dataclass(frozen=True)
class ModuleLine:
    station: str
    name: str
    kind: str
    readings: str
    battery: str
    signal: str
    age: str
    health: str  # "ok", "stale", "unreachable", "never-paired", "no-data"


@dataclass(frozen=True)
class CadenceRow:
    station: str
    state: str  # "aligned", "learning", "retrying", "stalled"
    period: str
    last_upload: str
    next_call: str


@dataclass(frozen=True)
class Schedule:
    mode: str
    explanation: str
    next_call: str
    rows: list[CadenceRow]


CADENCE_STATES = {
    "learning": "learning its rhythm",
    "aligned": "following its uploads",
    "retrying": "upload not visible yet, retrying soon",
    "stalled": "uploads stopped: every refresh interval",
}


def schedule(settings: RefreshSettings, refresh: RefreshStatus,
             cadences: tuple[DeviceCadence, ...], snapshot: Snapshot | None,
             now: float) -> Schedule:
    """Which refresh mode is in effect, when the next data call is and, in aligned mode,
    what was learned of each device's uploads."""
    interval = span(settings.interval)
    if settings.mode == "fixed":
        explanation = f"fixed: every {interval}, whatever the stations' uploads"
    else:
        explanation = (f"aligned: just after each station's upload should be visible; every "
                       f"{interval} until its rhythm is learned or while its uploads stop")
    next_call = ("" if refresh.next_call is None else
                 f"{local_time(refresh.next_call)} ({relative(refresh.next_call, now)})")
    labels = {station.id: station.label
              for station in (() if snapshot is None else snapshot.stations)}
    rows = [CadenceRow(
        station=labels.get(c.device_id, c.device_id),
        state=c.state,
        period="" if c.period is None else f"every {span(c.period)}",
        last_upload="" if c.last_upload is None else relative(c.last_upload, now),
        next_call=f"{relative(c.next_call, now)} ({CADENCE_STATES[c.state]})",
    ) for c in cadences]
    return Schedule(settings.mode, explanation, next_call, rows)


def budget_waits(state: BudgetWaitState, now: float) -> list[str]:
    """One line per poller waiting for room in Netatmo's call budget."""
    return [f"The {wait.caller} poller has waited {span(now - wait.since)} for {wait.why}; "
            f"next try {relative(wait.until, now)}. A backfill beside the service takes part "
            "of the budget (its --hourly-calls)."
            for wait in state.waiting]


def local_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def span(seconds: float) -> str:
    """`2 h 41 min`, `5 min`, `12 s`, `3 d 4 h`."""
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def relative(timestamp: float, now: float) -> str:
    delta = timestamp - now
    return f"in {span(delta)}" if delta >= 0 else f"{span(delta)} ago"


def token_advice(status: TokenStatus, scopes: tuple[str, ...]) -> Advice | None:
    if status.state is AuthState.INVALID_GRANT:
        return ADVICE["invalid_grant"]
    if status.state is AuthState.INVALID_CLIENT:
        return ADVICE["invalid_client"]
    if status.state is AuthState.MISSING_SCOPE:
        return Advice(ADVICE["missing_scope"].problem,
                      ADVICE["missing_scope"].fix.format(scopes=" ".join(scopes)))
    return None


def refresh_advice(refresh: RefreshStatus, scopes: tuple[str, ...]) -> Advice | None:
    if refresh.ok or refresh.error_reason is None:
        return None
    advice = ADVICE.get(refresh.error_reason)
    if advice is None:
        return Advice(f"Netatmo answered: {refresh.error_message}",
                      "The exporter tries again at the next refresh interval.")
    problem = advice.problem
    if refresh.error_reason in SHOW_ANSWER and refresh.error_message:
        problem = f"{problem} Netatmo answered: {refresh.error_message}"
    return Advice(problem, advice.fix.format(scopes=" ".join(scopes)))


def file_advice(status: TokenStatus) -> Advice | None:
    if status.token_file_problem is None and not status.unsaved:
        return None
    return Advice(
        f"Token file problem: {status.token_file_problem or 'the latest token is not saved yet'}",
        f"Check that {status.token_file} is owned and writable by the exporter's user and "
        "that the disk is not full. The exporter keeps the token in memory meanwhile and "
        "writes it at the next change or at shutdown.")


ADVICE = {
    "invalid_grant": Advice(
        "Netatmo no longer accepts the saved authorization (invalid_grant).",
        "Authorize again with the button below. If this keeps happening, open your Netatmo "
        "account settings and remove old entries for this app under partner apps: another "
        "copy of the exporter or an old authorization may be spending the same token."),
    "invalid_client": Advice(
        "Netatmo refused the app's credentials (invalid_client).",
        "Check --client-id and --client-secret (NETATMO_CLIENT_ID, NETATMO_CLIENT_SECRET) "
        "against your app in the Netatmo developer console, then restart the exporter."),
    "missing_scope": Advice(
        "The authorization does not include a permission the exporter asks for.",
        "Authorize again (it asks for: {scopes}), or remove the scope from --scope "
        "(NETATMO_SCOPE)."),
    "rate_limited": Advice(
        "Netatmo's rate limit was reached.",
        "Nothing to do: the exporter waits longer before the next try. If it persists, "
        "another program using the same Netatmo app may be spending the quota."),
    "transient": Advice(
        "Netatmo could not be reached or answered with a server error.",
        "This usually passes by itself; the exporter tries again. If it lasts, check the "
        "box's network, DNS and clock."),
    "bad_response": Advice(
        "Netatmo sent an answer the exporter could not read.",
        "This usually passes by itself; the exporter tries again at the next refresh."),
    "too_large": Advice(
        "Netatmo's answer was larger than 16 MB (real answers are far below 1 MB), so the "
        "exporter stopped reading it.",
        "The exporter tries again at the next refresh. If it lasts, check --api-url and any "
        "proxy between the box and Netatmo."),
    "too_slow": Advice(
        "Netatmo's answer took longer than 30 seconds in all, so the exporter gave up on it.",
        "The exporter tries again at the next refresh. If it lasts, check the box's network "
        "and any proxy between the box and Netatmo."),
    "access_token_rejected": Advice(
        "Netatmo rejected the access token.",
        "The exporter refreshes it by itself; if this persists, authorize again."),
    "not_authorized": Advice(
        "The exporter is not authorized yet.",
        "Authorize it with the button below, or paste a refresh token."),
}


# Reasons whose exact answer helps the operator (which endpoint, which words Netatmo used).
SHOW_ANSWER = ("rate_limited", "missing_scope", "bad_response")


def module_lines(snapshot: Snapshot | None, now: float, age_stale: float) -> list[ModuleLine]:
    if snapshot is None:
        return []
    # Named as on /metrics: two modules of one name get their ids appended there and here.
    rows = [_row(station, module, labels.module, now, age_stale)
            for station, module, labels in label_modules(snapshot.stations)]
    return [dataclasses.replace(row, station="") if i and rows[i - 1].station == row.station
            else row for i, row in enumerate(rows)]


def _row(station: Station, module: Module, name: str, now: float, age_stale: float
         ) -> ModuleLine:
    health = _health(module, now, age_stale)
    measured = module.measured_at
    age = {
        "never-paired": "never paired",
        "unreachable": "unreachable",
        "no-data": "no data yet",
    }.get(health, "")
    if not age and measured is not None:
        age = f"{span(now - measured)} ago" + (" (stale)" if health == "stale" else "")
    return ModuleLine(
        station=station.label,
        name=name,
        kind=MODULE_KINDS.get(module.type, f"Unknown type {module.type}"),
        readings="" if health in ("never-paired", "unreachable") else _readings(module),
        battery=_battery(module),
        signal=_signal(module),
        age=age,
        health=health,
    )


def _health(module: Module, now: float, age_stale: float) -> str:
    if module.never_paired:
        return "never-paired"
    if module.reachable is False:
        return "unreachable"
    if module.measured_at is None:
        return "no-data"
    return "stale" if is_stale(module, now, age_stale) else "ok"


def _readings(module: Module) -> str:
    r = module.readings
    if r is None:
        return ""
    parts = [
        (r.temperature, "{:.1f} °C"),
        (r.humidity, "{:.0f} %"),
        (r.co2, "{:.0f} ppm CO₂"),
        (r.noise, "{:.0f} dB"),
        (r.pressure, "{:.1f} mbar"),
        (r.wind_strength, "wind {:.0f} km/h"),
        (r.gust_strength, "gusts {:.0f} km/h"),
        (r.rain, "rain {:.1f} mm"),
        (r.sum_rain_24, "{:.1f} mm today"),
    ]
    # No-break spaces keep "38 dB" together when a phone wraps the column.
    return ", ".join(fmt.format(value).replace(" ", "\u00a0")
                     for value, fmt in parts if value is not None)


def _battery(module: Module) -> str:
    if module.never_paired or module.battery_percent is None:
        return ""
    return f"{module.battery_percent:.0f} %"


def _signal(module: Module) -> str:
    if module.never_paired:
        return ""
    if module.wifi_status is not None:
        value = module.wifi_status
        word = "good" if value <= 56 else "average" if value <= 71 else "bad"
        return f"Wi-Fi {word} ({value:.0f})"
    if module.rf_status is not None:
        value = module.rf_status
        word = ("full" if value <= 60 else "high" if value <= 70
                else "medium" if value <= 80 else "low")
        return f"radio {word} ({value:.0f})"
    return ""
