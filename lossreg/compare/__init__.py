"""Compare registered losses on one tabular data set: cross-validation, stress scenarios, reports.

>>> from lossreg.compare import compare, summarize          # doctest: +SKIP
>>> results = compare("breast_cancer", losses="cross_entropy,focal(gamma=2.0)",
...                   scenarios=["symmetric_noise:0.3"], cv=5, repeats=2, out="compare-out/bc")
>>> summarize(results)
"""

from lossreg.compare._data import SKLEARN_DATASETS, Dataset, detect_task, load_data
from lossreg.compare._losses import LossChoice, parse_losses
from lossreg.compare._metrics import expected_calibration_error
from lossreg.compare._report import write_reports
from lossreg.compare._run import KILL_AFTER_ENV, compare, plan_fits
from lossreg.compare._scenarios import SCENARIOS, Scenario, StressedEstimator, corrupt
from lossreg.compare._summary import summarize

__all__ = [
    "KILL_AFTER_ENV",
    "SCENARIOS",
    "SKLEARN_DATASETS",
    "Dataset",
    "LossChoice",
    "Scenario",
    "StressedEstimator",
    "compare",
    "corrupt",
    "detect_task",
    "expected_calibration_error",
    "load_data",
    "parse_losses",
    "plan_fits",
    "summarize",
    "write_reports",
]
