"""ToyMoE from Python: run a toymoe script and load what it wrote.

    import toymoe
    res = toymoe.run("paper/fig3_features_per_dim", out="results/fig3", scale="quick", jobs=2)
    res = toymoe.load("results/fig3")        # any output directory, later
    res.frame()                              # summary.csv joined with results.npz (pandas)

The engine is the toymoe binary (Swift); this package only starts it and reads its files. numpy is required,
pandas optional.
"""

from ._errors import ToyMoEError
from ._load import Result, load, read_csv, typed_column
from ._run import find_binary, find_script, run, script_dirs

__version__ = "0.1.0"
__all__ = ["run", "load", "Result", "ToyMoEError", "find_binary", "find_script", "script_dirs", "read_csv",
           "typed_column"]
