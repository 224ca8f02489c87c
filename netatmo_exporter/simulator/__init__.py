"""A simulated Netatmo cloud for tests and the demo mode (standard library only).

>>> from netatmo_exporter.simulator import FakeNetatmoCloud, Fault, demo_account
>>> with FakeNetatmoCloud(client_id="cid", client_secret="csecret") as cloud:
...     refresh_token = cloud.mint_refresh_token()
...     cloud.inject("getstationsdata", Fault.html_502(), times=1)

Stored history (``/api/getmeasure``, ``/api/getroommeasure``): every account carries a
:class:`History` (``account.history``; knobs ``seed``, ``anchor``, ``days``, ``outages``,
``stopped``, ``null_every``, see :mod:`.history`). The expected answer of any call is
``account.history.measure(account.weather_series(device, module), types, scale, begin,
end, now=...)`` (rooms: ``account.room_series(home, room)``). :func:`demo_history` gives
the demo account a year with one station outage and one module that stopped;
:func:`ten_module_account` is the benchmark's "year of a ten-module account". Rate limits:
``FakeNetatmoCloud(rate_limits=NETATMO_RATE_LIMITS)`` or ``scaled_rate_limits(speedup)``.
"""

from netatmo_exporter.adapters.system.clock import ScaledClock

from .accounts import (
    Account,
    Ago,
    Drift,
    HomeCoach,
    SimModule,
    SimStation,
    demo_account,
    demo_history,
    empty_account,
    large_account,
    quirks_account,
    ten_module_account,
)
from .cadence import Cadence, Upload
from .cloud import (
    DEFAULT_SCOPE,
    NETATMO_RATE_LIMITS,
    FakeNetatmoCloud,
    RequestRecord,
    scaled_rate_limits,
)
from .energy import EnergyHome, EnergyModule, EnergyRoom
from .faults import Fault, FaultKind
from .history import History, Outage, SimSeries

__all__ = [
    "DEFAULT_SCOPE",
    "NETATMO_RATE_LIMITS",
    "Account",
    "Ago",
    "Cadence",
    "Drift",
    "EnergyHome",
    "EnergyModule",
    "EnergyRoom",
    "FakeNetatmoCloud",
    "Fault",
    "FaultKind",
    "History",
    "HomeCoach",
    "Outage",
    "RequestRecord",
    "ScaledClock",
    "SimModule",
    "SimSeries",
    "SimStation",
    "Upload",
    "demo_account",
    "demo_history",
    "empty_account",
    "large_account",
    "quirks_account",
    "scaled_rate_limits",
    "ten_module_account",
]
