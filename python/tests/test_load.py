"""toymoe.load on hand-made output directories: typing of summary.csv, the join with results.npz, and the errors."""

import json

import numpy as np
import pytest

import toymoe
from toymoe import ToyMoEError, typed_column


def write_out(d, csv_text=None, npz=None, sweep=True, extra=None):
    d.mkdir(parents=True, exist_ok=True)
    (d / "provenance.json").write_text(json.dumps({"tool": "toymoe run", "seed": 7}))
    (d / "config.json").write_text(json.dumps({"params": {"steps": "50"}, "jobs": 2}))
    if sweep:
        (d / "sweep.json").write_text(json.dumps({"name": "s", "cells": [{"S": 0.1}, {"S": 0.5}], "replicates": 1}))
    if csv_text is not None:
        (d / "summary.csv").write_text(csv_text)
    if npz is not None:
        np.savez(d / "results.npz", **npz)
    for name, text in (extra or {}).items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)
    return d


CSV = ("cell_id,replicate,S,final_loss,phase,seed,status,failed_step,failure_reason\n"
       "c0000,0,0.1,0.25,superposed,17370246497154568999,ok,,\n"
       'c0001,2,0.5,inf,"mono, semantic",12,diverged,3,"loss became inf (lr 1e9)"\n')
NPZ = {"replicate": np.array([0, 2]), "param_S": np.array([0.1, 0.5]), "final_loss": np.array([0.25, np.inf]),
       "norms": np.array([[1.0, 2.0], [3.0, 4.0]]), "failed": np.array([0, 1]), "failed_step": np.array([-1, 3])}


def test_typed_column_picks_the_narrowest_exact_type():
    assert typed_column(["1", "-2", "3"]).dtype == np.int64
    seeds = typed_column(["17370246497154568999", "0"])  # above int64: uint64, not a rounded float
    assert seeds.dtype == np.uint64 and int(seeds[0]) == 17370246497154568999
    gaps = typed_column(["1", "", "3"])
    assert gaps.dtype == np.float64 and np.isnan(gaps[1]) and gaps[2] == 3
    huge_gaps = typed_column(["17370246497154568999", ""])  # float64 would round it: kept exact as Python ints
    assert huge_gaps.dtype == object and huge_gaps[0] == 17370246497154568999 and huge_gaps[1] is None
    f = typed_column(["0.1", "inf", "-inf", "nan", "1e-05", ""])
    assert f.dtype == np.float64 and f[0] == 0.1 and f[1] == np.inf and f[2] == -np.inf and np.isnan(f[3])
    assert f[4] == 1e-05 and np.isnan(f[5])
    assert typed_column(["true", "false"]).tolist() == [True, False]
    assert typed_column(["true", ""]).tolist() == [True, None]
    assert typed_column(["ok", "", "diverged"]).tolist() == ["ok", "", "diverged"]
    assert typed_column(["1_000", "2"]).dtype == object  # float() would take "1_000": the tool never writes it
    assert np.isnan(typed_column(["", ""])).all()


def test_summary_without_pandas_is_a_dict_of_typed_columns(tmp_path, no_pandas):
    res = toymoe.load(write_out(tmp_path / "o", CSV, NPZ))
    assert isinstance(res.summary, dict)
    assert list(res.summary) == ["cell_id", "replicate", "S", "final_loss", "phase", "seed", "status",
                                 "failed_step", "failure_reason"]
    assert res.summary["phase"].tolist() == ["superposed", "mono, semantic"]
    assert res.summary["final_loss"][1] == np.inf
    assert res.summary["seed"].dtype == np.uint64
    assert res.results["norms"].shape == (2, 2)
    assert res.provenance["seed"] == 7 and res.config["jobs"] == 2 and res.sweep["name"] == "s"
    with pytest.raises(ImportError, match="pandas"):
        res.frame()


def test_frame_joins_summary_and_results_row_by_row(tmp_path):
    pd = pytest.importorskip("pandas")
    res = toymoe.load(write_out(tmp_path / "o", CSV, NPZ))
    assert isinstance(res.summary, pd.DataFrame) and len(res.summary) == 2
    df = res.frame()
    # summary columns first, then what results.npz adds; shared ones (replicate, S via param_S, final_loss,
    # failed_step) are checked and not repeated
    assert list(df.columns) == list(res.summary.columns) + ["norms", "failed"]
    assert df["failed"].tolist() == [0, 1]
    assert np.array_equal(df["norms"][1], [3.0, 4.0])
    assert df.loc[df.status != "ok", "failure_reason"].tolist() == ["loss became inf (lr 1e9)"]


def test_frame_refuses_results_of_another_length(tmp_path):
    pytest.importorskip("pandas")
    npz = dict(NPZ, final_loss=np.array([0.25, np.inf, 1.0]))
    with pytest.raises(ToyMoEError, match=r"'final_loss' has shape \(3,\) but summary.csv has 2 rows"):
        toymoe.load(write_out(tmp_path / "o", CSV, npz)).frame()


def test_frame_refuses_files_that_disagree(tmp_path):
    pytest.importorskip("pandas")
    npz = dict(NPZ, final_loss=np.array([0.26, np.inf]))  # another run's loss
    with pytest.raises(ToyMoEError, match="'final_loss' and results.npz 'final_loss' disagree at row 0"):
        toymoe.load(write_out(tmp_path / "a", CSV, npz)).frame()
    npz = dict(NPZ, param_S=np.array([0.1, 0.9]))
    with pytest.raises(ToyMoEError, match="'S' and results.npz 'param_S' disagree at row 1"):
        toymoe.load(write_out(tmp_path / "b", CSV, npz)).frame()


def test_frame_without_a_finished_summary_says_what_to_do(tmp_path):
    pytest.importorskip("pandas")
    with pytest.raises(ToyMoEError, match="not finished.*--resume"):
        toymoe.load(write_out(tmp_path / "sweep")).frame()
    with pytest.raises(ToyMoEError, match="declared no sweep"):
        toymoe.load(write_out(tmp_path / "plain", sweep=False)).frame()
    with pytest.raises(ToyMoEError, match="results.npz is not"):
        toymoe.load(write_out(tmp_path / "half", CSV)).frame()


def test_load_refuses_what_is_not_a_toymoe_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        toymoe.load(tmp_path / "absent")
    (tmp_path / "other").mkdir()
    with pytest.raises(ToyMoEError, match="not a toymoe output directory"):
        toymoe.load(tmp_path / "other")
    d = write_out(tmp_path / "badjson", sweep=False)
    (d / "result.json").write_text("{oops")
    with pytest.raises(ToyMoEError, match="result.json: not valid JSON"):
        toymoe.load(d)
    d = write_out(tmp_path / "ragged", "a,b\n1,2\n3\n", sweep=False)
    with pytest.raises(ToyMoEError, match="data row 2 has 1 fields, the header has 2"):
        toymoe.load(d)
    d = write_out(tmp_path / "dup", "a,a\n1,2\n", sweep=False)
    with pytest.raises(ToyMoEError, match="column 'a' appears twice"):
        toymoe.load(d)


def test_files_arrays_and_json(tmp_path):
    d = write_out(tmp_path / "o", sweep=False, extra={
        "result.json": json.dumps({"final_loss": 0.5}), "cells/c0000.json": "{\"id\": \"c0000\"}",
        "cells/.c0001.json.tmp-123": "half", "plots/fig.svg": "<svg/>"})
    np.save(d / "w.npy", np.arange(6.0).reshape(2, 3))
    np.savez(d / "model.npz", W=np.ones((1, 4, 2)))
    res = toymoe.load(d)
    assert res.result == {"final_loss": 0.5} and res.summary is None and res.results == {}
    assert res.files() == ["cells/c0000.json", "config.json", "model.npz", "plots/fig.svg", "provenance.json",
                           "result.json", "w.npy"]
    assert res.files("*.np?") == ["model.npz", "w.npy"]
    assert res.array("w.npy").shape == (2, 3) and res.array("model.npz")["W"].shape == (1, 4, 2)
    assert res.json("cells/c0000.json") == {"id": "c0000"}


def test_json_non_finite_encoding_reads_back_as_floats(tmp_path):
    # toymoe writes NaN/±Inf as {"non_finite": ...} in result.json, summary.json and save_json files, never null.
    d = write_out(tmp_path / "nf", sweep=False, extra={
        "result.json": json.dumps({"a": {"non_finite": "nan"}, "b": [{"non_finite": "inf"}, {"non_finite": "-inf"}, 2],
                                   "c": {"non_finite": "inf", "other": 1}}),
    })
    r = toymoe.load(d)
    assert np.isnan(r.result["a"]) and r.result["b"] == [float("inf"), float("-inf"), 2]
    assert r.result["c"] == {"non_finite": "inf", "other": 1}  # not the reserved shape: left as it is
