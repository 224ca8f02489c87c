"""The Energy metric catalog: rooms, heating modules and homes (--scope read_thermostat)."""

from __future__ import annotations

from netatmo_exporter.adapters.metrics.spec import MetricSpec, metric

ROOM_LABELS = ("room", "home")
MODULE_LABELS = ("module", "room", "home")
HOME_LABELS = ("home",)

_ABSENT = "Absent when Netatmo does not report it."
_ENERGY = "Netatmo Energy (--scope read_thermostat)"

ROOM_METRICS = {
    "temperature": metric("netatmo_room_temperature_celsius", "°C",
                          f"Temperature measured in the room. {_ENERGY}", ROOM_LABELS),
    "setpoint": metric("netatmo_room_setpoint_temperature_celsius", "°C",
                       "Temperature the room is heated to now", ROOM_LABELS),
    "mode": metric("netatmo_room_setpoint_mode", "",
                   "1 for the room's current setpoint mode (schedule, manual, away, hg: frost "
                   "guard, off, max, home), 0 for the others", (*ROOM_LABELS, "mode")),
    "start": metric("netatmo_room_setpoint_start_timestamp_seconds", "Unix seconds",
                    f"Unix time the current setpoint began. {_ABSENT}", ROOM_LABELS),
    "end": metric("netatmo_room_setpoint_end_timestamp_seconds", "Unix seconds",
                  f"Unix time a manual or max setpoint ends. {_ABSENT}", ROOM_LABELS),
    "power": metric("netatmo_room_heating_power_request_ratio", "ratio",
                    "Heating power the room asks for, 0 to 1 (heating_power_request / 100)",
                    ROOM_LABELS),
    "window": metric("netatmo_room_open_window", "",
                     "1 while Netatmo detects an open window in the room (heating paused)",
                     ROOM_LABELS),
    "anticipating": metric("netatmo_room_anticipating", "",
                           "1 while the room heats ahead of a scheduled setpoint",
                           ROOM_LABELS),
    "reachable": metric("netatmo_room_reachable", "",
                        "1 if Netatmo reaches the room's heating modules, else 0", ROOM_LABELS),
    "info": metric("netatmo_room_info", "", "Room metadata for joins",
                   (*ROOM_LABELS, "room_id", "home_id", "type"), "info"),
}

SHARED_MODULE_METRICS = {
    "reachable": metric("netatmo_module_reachable", "",
                        "1 if Netatmo can reach the heating module, else 0", MODULE_LABELS),
    "battery_volts": metric("netatmo_module_battery_volts", "V",
                            "Battery voltage of a thermostat or valve (battery_level)",
                            MODULE_LABELS),
    "rf": metric("netatmo_module_rf_signal_strength", "",
                 "Radio signal quality of a heating module, lower is better", MODULE_LABELS),
    "wifi": metric("netatmo_module_wifi_signal_strength", "",
                   "Wifi signal quality of a relay, lower is better", MODULE_LABELS),
    "info": metric("netatmo_module_info", "",
                   "Heating module metadata for joins; any module type of the home, known "
                   "or not, gets it and its health series",
                   (*MODULE_LABELS, "module_id", "room_id", "home_id", "type", "firmware",
                    "bridge"), "info"),
}

HEATING_MODULE_METRICS = {
    "battery_state": metric("netatmo_module_battery_state", "",
                            "1 for the battery state Netatmo reports (full, high, medium, low, "
                            "very_low), 0 for the others", (*MODULE_LABELS, "state")),
    "boiler": metric("netatmo_module_boiler_on", "",
                     "1 while a thermostat or relay tells the boiler to heat (boiler_status)",
                     MODULE_LABELS),
}

HOME_METRICS = {
    "mode": metric("netatmo_home_heating_mode", "",
                   "1 for the home's heating mode (schedule, away, hg: frost guard), 0 for "
                   "the others", (*HOME_LABELS, "mode")),
    "up": metric("netatmo_home_status_up", "",
                 "1 if the last homestatus of the home succeeded; 0 and no room or module "
                 "values while it fails", HOME_LABELS),
    "errors": metric("netatmo_energy_errors_total", "refreshes",
                     "Failed Energy reads by home and reason; home is empty when the whole "
                     "refresh failed (homesdata)", (*HOME_LABELS, "reason"), "counter"),
}

ENERGY_METRICS: tuple[MetricSpec, ...] = (
    *ROOM_METRICS.values(),
    *SHARED_MODULE_METRICS.values(),
    *HEATING_MODULE_METRICS.values(),
    *HOME_METRICS.values(),
)
