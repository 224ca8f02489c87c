"""A simulated Netatmo cloud for tests and the demo mode (standard library only).

>>> from netatmo_exporter.simulator import FakeNetatmoCloud, Fault, demo_account
>>> with FakeNetatmoCloud(client_id="cid", client_secret="csecret") as cloud:
...     refresh_token = cloud.mint_refresh_token()
...     cloud.inject("getstationsdata", Fault.html_502(), times=1)
"""

from .accounts import (
    Account,
    Ago,
    Drift,
    HomeCoach,
    Module,
    Station,
    demo_account,
    empty_account,
    large_account,
    quirks_account,
)
from .cadence import Cadence, Upload
from .clock import ScaledClock
from .cloud import DEFAULT_SCOPE, NETATMO_RATE_LIMITS, FakeNetatmoCloud, RequestRecord
from .energy import EnergyHome, EnergyModule, EnergyRoom
from .faults import Fault, FaultKind

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
    "HomeCoach",
    "Module",
    "RequestRecord",
    "ScaledClock",
    "Station",
    "Upload",
    "demo_account",
    "empty_account",
    "large_account",
    "quirks_account",
]
