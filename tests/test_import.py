"""Importing lossreg loads no plugin and no heavy dependency."""

import subprocess
import sys


def test_import_loads_no_plugin_and_no_torch():
    code = (
        "import sys, lossreg\n"
        "heavy = [m for m in ('torch', 'skorch', 'sklearn', 'lossreg.registry',"
        " 'lossreg.plugins.classification') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve():
    import lossreg

    for name in lossreg.__all__:
        assert getattr(lossreg, name) is not None
    assert sorted(lossreg.__all__) == lossreg.__all__
