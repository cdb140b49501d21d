"""Plugin cards (issue 25, item 5): NAME.plugins.json holds what SQLamarr's Plugin/GenerativePlugin need, equal
to what SYMBOL_info of the written file says; SQLamarr runs the committed tracking and PID libraries configured
from their cards alone (no name or number typed here)."""

from __future__ import annotations

import ctypes
import json
import subprocess

import jsonschema
import numpy as np
import pytest
from referencing import Registry, Resource

from exporter.check.reference_rows import parse_rows

from helpers import ROOT, run_cli, small_model_set

REPORT = ROOT / "exporter" / "check" / "report"
INFO = json.loads((REPORT / "info.schema.json").read_text())
CARD = json.loads((REPORT / "plugins.schema.json").read_text())


@pytest.fixture(scope="module")
def libraries(tmp_path_factory) -> dict:
    """The committed manifests' libraries, compiled once (-O0: the quickest build, Lamarr's debug line)."""
    folder = tmp_path_factory.mktemp("libraries")
    built = {}
    for name in ("lamarr_tracking", "lamarr_pid"):
        built[name] = folder / f"lib{name}.so"
        source = ROOT / "generated" / f"{name}.c"
        subprocess.run(["gcc", "-std=c99", "-O0", "-shared", "-fPIC", source, "-o", built[name], "-lm"], check=True)
    return built


def validate(card: dict) -> None:
    registry = Registry().with_resource(INFO["$id"], Resource.from_contents(INFO))
    jsonschema.Draft202012Validator(CARD, registry=registry).validate(card)


@pytest.mark.parametrize("name", ["lamarr_tracking", "lamarr_pid"])
def test_committed_cards_equal_the_libraries_info(name, libraries):
    card = json.loads((ROOT / "generated" / f"{name}.plugins.json").read_text())
    validate(card)
    assert card["library"] == f"lib{name}.so"
    library = libraries[name]
    assert library.name == card["library"]
    lib = ctypes.CDLL(str(library))
    listed = lib[f"{name}_symbols"]
    listed.restype = ctypes.POINTER(ctypes.c_char_p)
    functions = []
    while listed()[len(functions)] is not None:
        functions.append(listed()[len(functions)].decode())
    assert [p["function"] for p in card["plugins"]] == functions
    for plugin in card["plugins"]:
        fn = lib[f"{plugin['function']}_info"]
        fn.restype = ctypes.c_char_p
        assert json.loads(fn()) == plugin["info"]
        assert (plugin["inputs"], plugin["n_random"]) == (plugin["info"]["inputs"], plugin["info"]["n_random"])
    if name == "lamarr_pid":
        pipe = next(p for p in card["plugins"] if p["function"] == "full_muon_pipe")
        assert pipe["inputs"] == ["p", "eta", "nTracks", "charge", "isMuon"] and len(pipe["outputs"]) == 15


def test_card_of_one_model_on_request(capsys, tmp_path, keras):
    folder = small_model_set(keras, tmp_path / "set")
    out = tmp_path / "cls.c"
    code, _, err = run_cli(capsys, folder / "nets" / "cls.keras", "--no-check", "-o", out)
    assert code == 0, err
    assert not out.with_suffix(".plugins.json").exists()  # a single model's card is asked for
    code, text, err = run_cli(capsys, folder / "nets" / "cls.keras", "--no-check", "-o", out, "--card", "--json")
    assert code == 0, err
    assert json.loads(text)["files"]["card"] == str(out.with_suffix(".plugins.json"))
    card = json.loads(out.with_suffix(".plugins.json").read_text())
    validate(card)
    assert card["library"] == "libcls.so" and card["plugins"][0]["info"]["library"] is None


@pytest.mark.parametrize("name", ["lamarr_tracking", "lamarr_pid"])
def test_sqlamarr_runs_the_library_from_its_card(name, libraries, tmp_path):
    """SQLamarr's Plugin and GenerativePlugin built from the card: the query selects the card's inputs from a
    table of the reference rows; each plugin's outputs (deterministic ones: the reference outputs) land in its
    table under the card's names."""
    import SQLamarr  # in the test extras: the card is proven on the real consumer

    card = json.loads((ROOT / "generated" / f"{name}.plugins.json").read_text())
    library = libraries[name]
    assert library.name == card["library"]
    _, rows = parse_rows((ROOT / "generated" / f"{name}.ref.txt").read_text())
    rows = {r.symbol: r for r in rows}
    # a file: SQLamarr's own SQLite and Python's are two libraries, which share no in-memory database
    db = SQLamarr.SQLite3DB(str(tmp_path / "events.db")).seed(1)
    algorithms, expected = [], {}
    with db.connect() as connection:
        for plugin in card["plugins"]:
            r, table = rows[plugin["function"]], f"in_{plugin['function']}"
            columns = ", ".join(f"{c} REAL" for c in plugin["inputs"])
            connection.execute(f"CREATE TABLE {table} (row_id INTEGER PRIMARY KEY, {columns})")
            marks = ", ".join("?" * (1 + len(plugin["inputs"])))
            connection.executemany(
                f"INSERT INTO {table} VALUES ({marks})", [(k, *map(float, row)) for k, row in enumerate(r.inputs)]
            )
            query = f"SELECT row_id, {', '.join(plugin['inputs'])} FROM {table}"
            common = (db, str(library), plugin["function"], query, f"out_{plugin['function']}", plugin["outputs"])
            if plugin["kind"] == "generative":
                algorithms.append(SQLamarr.GenerativePlugin(*common, plugin["n_random"], ["row_id"]))
            else:
                algorithms.append(SQLamarr.Plugin(*common, ["row_id"]))
                expected[plugin["function"]] = r
        connection.commit()
    connection.close()
    # the plugins write temporary tables, which only SQLamarr's connection sees: copied to tables Python reads
    copies = [f"CREATE TABLE got_{p['function']} AS SELECT * FROM out_{p['function']}" for p in card["plugins"]]
    SQLamarr.Pipeline([*algorithms, SQLamarr.EditEventStore(db, copies)]).execute()
    with db.connect() as connection:
        for plugin in card["plugins"]:
            names = ", ".join(plugin["outputs"])
            query = f"SELECT {names} FROM got_{plugin['function']} ORDER BY row_id"
            got = np.array(connection.execute(query).fetchall())
            assert got.shape == (len(rows[plugin["function"]].inputs), len(plugin["outputs"])), plugin["function"]
            assert np.isfinite(got).all()
            if plugin["function"] in expected:
                r = expected[plugin["function"]]
                np.testing.assert_allclose(got, r.outputs, atol=r.atol, rtol=r.rtol)
    connection.close()  # SQLamarr closes its connection when db goes: an open one of Python's makes that fail
