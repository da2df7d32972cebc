"""toymoe.run and toymoe.load against the real binary (TOYMOE_BIN, PATH, or a release build of the checkout):
bundled scripts, the issue's Fig. 3 call at a tiny size, a script without a sweep, a diverged replicate, a failing
script, and an unfinished sweep completed by a second run."""

import textwrap

import numpy as np
import pytest

import toymoe
from toymoe import ToyMoEError

pytestmark = pytest.mark.usefixtures("bundled_scripts")


def test_sweep_loads_with_and_without_pandas(toymoe_bin, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    res = toymoe.run("examples/sweep", out=out, jobs=2, quiet=True, steps=50, binary=toymoe_bin)
    assert res.sweep["name"] == "phase_2x1" and len(res.sweep["cells"]) == 9
    assert res.config["params"] == {"steps": "50"} and res.config["jobs"] == 2
    assert res.provenance["seed"] == 0 and "steps=50" in res.provenance["command_line"]
    n = len(res.results["final_loss"])
    assert n == 9 and res.results["param_S"].tolist() == [0.1] * 3 + [0.5] * 3 + [0.9] * 3
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    plain = toymoe.load(out)
    cols = plain.summary
    assert isinstance(cols, dict) and {"cell_id", "replicate", "S", "r", "final_loss", "status"} <= set(cols)
    assert cols["final_loss"].dtype == np.float64 and cols["replicate"].dtype.kind in "iu"
    # the CSV's text and the NPZ's binary give the same numbers (the tool writes shortest round-trip decimals)
    assert np.array_equal(cols["final_loss"], res.results["final_loss"])
    assert cols["cell_id"].tolist() == [f"c{i:04d}" for i in range(9)]
    monkeypatch.undo()
    pd = pytest.importorskip("pandas")
    df = toymoe.load(out).frame()
    assert isinstance(df, pd.DataFrame) and len(df) == 9
    assert df["final_loss"].tolist() == cols["final_loss"].tolist()
    assert set(res.results) - {"param_S", "param_r"} <= set(df.columns)


def test_the_issue_example_fig3_at_a_tiny_size(toymoe_bin, tmp_path):
    out = tmp_path / "fig3"
    res = toymoe.run("paper/fig3_features_per_dim", out=out, scale="quick", jobs=2, quiet=True, densities=1,
                     steps=30, batch=64, eval_samples=256, fpd_samples=256, binary=toymoe_bin)
    assert res.config["params"]["scale"] == "quick"
    assert len(res.results["final_loss"]) == 4  # four architectures at p = 0.1
    assert any(f.endswith(".svg") for f in res.files())
    assert res.result is not None or res.summary_json is not None
    if toymoe._load._pandas() is not None:
        assert len(res.frame()) == 4


def test_script_without_sweep(toymoe_bin, tmp_path):
    res = toymoe.run("examples/dense", out=tmp_path / "dense", quiet=True, steps=30, binary=toymoe_bin)
    assert res.sweep is None and res.summary is None and res.results == {}
    assert isinstance(res.result["final_loss"], float) and len(res.result["feature_norms"]) == 20
    assert res.array("model.npz")["W"].shape == (1, 20, 6)
    assert "model.npz" in res.files("*.npz")
    if toymoe._load._pandas() is not None:
        with pytest.raises(ToyMoEError, match="declared no sweep"):
            res.frame()


DIVERGING = textwrap.dedent("""\
    toymoe.sweep{
      name = "lr", grid = { lr = { 1e-3, 1e9 } }, replicates = 2,
      run = function(cell, ctx)
        local m = toymoe.model{ n_features = 5, n_hidden = 2 }
        local r = toymoe.train(m, { data = toymoe.data{ feature_probability = 0.1, n_features = 5 },
                                    steps = 100, batch_size = 32, lr = cell.lr })
        return { final_loss = r.final_loss, norms = toymoe.metrics.feature_norms(m), ok = r.diverged == nil }
      end,
    }
    """)


def test_diverged_replicates_load_as_rows_with_a_status(toymoe_bin, tmp_path):
    script = tmp_path / "diverge.lua"
    script.write_text(DIVERGING)
    res = toymoe.run(script, out=tmp_path / "o", quiet=True, binary=toymoe_bin)
    status = res.summary["status"]
    status = status.tolist()
    assert status == ["ok", "ok", "diverged", "diverged"]
    assert res.results["failed"].tolist() == [0, 0, 1, 1]
    assert res.results["norms"].shape == (4, 5) or "norms" not in res.results  # a NaN model's norms may be ragged
    ok = res.summary["ok"]
    assert list(ok) == [True, True, False, False]
    if toymoe._load._pandas() is not None:
        df = res.frame()
        assert df.query("status != 'ok'")["failure_reason"].str.contains("loss became").all()


def test_failing_script_raises_with_the_lua_location(toymoe_bin, tmp_path):
    script = tmp_path / "bad.lua"
    script.write_text("local x = 1\nerror('boom')\n")
    with pytest.raises(ToyMoEError) as info:
        toymoe.run(script, out=tmp_path / "o", binary=toymoe_bin)
    assert info.value.returncode == 1
    assert "bad.lua:2: boom" in info.value.stderr and "bad.lua:2: boom" in str(info.value)


def test_unfinished_sweep_then_finished(toymoe_bin, tmp_path):
    out = tmp_path / "sharded"
    half = toymoe.run("examples/sweep", out=out, quiet=True, steps=20, args=["--shard", "0/2"], binary=toymoe_bin)
    assert half.sweep is not None and half.summary is None and half.results == {}
    if toymoe._load._pandas() is not None:
        with pytest.raises(ToyMoEError, match="not finished"):
            half.frame()
    with pytest.raises(ToyMoEError, match="--resume"):
        toymoe.run("examples/sweep", out=out, quiet=True, steps=20, binary=toymoe_bin)
    whole = toymoe.run("examples/sweep", out=out, quiet=True, steps=20, resume=True, binary=toymoe_bin)
    assert len(whole.results["final_loss"]) == 9


def test_unknown_script_name_reaches_the_binary(toymoe_bin, tmp_path):
    with pytest.raises(ToyMoEError, match="paper/no_such_script.*does not exist") as info:
        toymoe.run("paper/no_such_script", out=tmp_path / "o", binary=toymoe_bin)
    assert info.value.command[2] == "paper/no_such_script"
