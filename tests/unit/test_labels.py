"""Label values: `id-<id>` for unnamed modules, never two series with one label set."""

from __future__ import annotations

from netatmo_exporter.domain.weather.labels import ModuleLabels, label_modules, module_label
from netatmo_exporter.domain.weather.model import Module, Station


def make_station(*modules: Module, name: str | None = "Maison", sid: str = "s1") -> Station:
    return Station(id=sid, kind="station", main=Module(sid, "NAMain", "Salon"), name=name,
                   home_name="Home", modules=modules)


def test_unnamed_module_is_labelled_by_id() -> None:
    assert module_label(Module("02:00:00:00:00:02", "NAModule1")) == "id-02:00:00:00:00:02"
    assert module_label(Module("x", "NAModule1", "")) == "id-x"


def test_station_label_falls_back_to_home_then_main_module_then_id() -> None:
    main = Module("70:ee", "NAMain", "Atelier")
    assert Station("70:ee", "station", main, home_name="Maison").label == "Maison"
    assert Station("70:ee", "station", main).label == "Atelier"
    assert Station("70:ee", "station", Module("70:ee", "NAMain")).label == "id-70:ee"


def test_two_modules_with_one_name_get_distinct_label_sets() -> None:
    rows = label_modules([make_station(Module("03:01", "NAModule4", "Chambre"),
                                       Module("03:02", "NAModule4", "Chambre"),
                                       Module("02:01", "NAModule1", "Jardin"))])

    labels = [labels for _, _, labels in rows]
    assert len(set(labels)) == len(labels) == 4
    assert ModuleLabels("Jardin", "Maison", "Home") in labels
    chambres = sorted(lab.module for lab in labels if lab.module.startswith("Chambre"))
    assert chambres == ["Chambre (03:01)", "Chambre (03:02)"]


def test_same_module_name_in_two_stations_needs_no_suffix() -> None:
    rows = label_modules([make_station(Module("a", "NAModule1", "Jardin"), sid="s1"),
                          make_station(Module("b", "NAModule1", "Jardin"), name="Chalet",
                                       sid="s2")])

    assert {labels.module for _, _, labels in rows} == {"Salon", "Jardin"}
    assert len({labels for _, _, labels in rows}) == 4


def test_two_stations_with_one_label_are_told_apart() -> None:
    rows = label_modules([make_station(sid="s1"), make_station(sid="s2")])

    assert len({labels for _, _, labels in rows}) == 2


def test_suffix_cannot_collide_with_a_real_name() -> None:
    rows = label_modules([make_station(Module("03:01", "NAModule4", "Chambre"),
                                       Module("03:02", "NAModule4", "Chambre"),
                                       Module("03:03", "NAModule4", "Chambre (03:01)"))])

    assert len({labels for _, _, labels in rows}) == 4
