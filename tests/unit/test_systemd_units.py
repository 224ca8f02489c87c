"""The single unit and the template for several accounts stay in step: the template differs
only where an instance needs its own name, settings file, token and runtime directory."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PER_INSTANCE = {"Description", "Environment", "EnvironmentFile", "ExecCondition",
                "StateDirectory", "RuntimeDirectory"}


def settings(name: str) -> dict[tuple[str, str], list[str]]:
    """(section, key) -> values; repeated keys (SystemCallFilter=) keep their order."""
    text = (REPO / "systemd" / name).read_text().replace("\\\n", " ")
    entries: dict[tuple[str, str], list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault((section, key), []).append(" ".join(value.split()))
    return entries


def test_the_template_differs_only_per_instance() -> None:
    single, template = settings("netatmo-exporter.service"), settings(
        "netatmo-exporter@.service")

    differing = {key for key in single.keys() | template.keys()
                 if single.get(key) != template.get(key)}

    assert {key for _, key in differing} == PER_INSTANCE


def test_each_instance_has_its_own_files() -> None:
    template = settings("netatmo-exporter@.service")

    assert template[("Service", "EnvironmentFile")] == ["-/etc/netatmo-exporter/%i.env"]
    # ARGS= first: a NAME.env without it starts without systemd's unset-variable warning.
    assert template[("Service", "Environment")] == [
        "NETATMO_EXPORTER_TOKEN_FILE=/var/lib/netatmo-exporter/%i/token.json", "ARGS="]
    assert template[("Service", "StateDirectory")] == ["netatmo-exporter/%i"]
    # Not below /run/netatmo-exporter: the single unit removes that directory when it stops.
    assert template[("Service", "RuntimeDirectory")] == ["netatmo-exporter@%i"]
    assert "--settings-file /etc/netatmo-exporter/%i.env --unit netatmo-exporter@%i" in \
        template[("Service", "ExecCondition")][0]


def test_args_is_defined_when_the_settings_file_has_no_args_line() -> None:
    # systemd warns at each start about a referenced but unset variable; a settings file
    # (EnvironmentFile=, read after Environment=) still sets its own ARGS.
    for name in ("netatmo-exporter.service", "netatmo-exporter@.service"):
        unit = settings(name)
        assert "ARGS=" in unit[("Service", "Environment")]
        assert "$ARGS" in unit[("Service", "ExecStart")][0]


def test_a_wrong_setting_fails_the_unit_without_restarts() -> None:
    for name in ("netatmo-exporter.service", "netatmo-exporter@.service"):
        unit = settings(name)
        assert unit[("Service", "Type")] == ["notify"]
        assert unit[("Service", "RestartPreventExitStatus")] == ["2 78"]
        assert unit[("Service", "ExecCondition")][0].startswith(
            "/usr/bin/netatmo-exporter check-config --only-credentials")
