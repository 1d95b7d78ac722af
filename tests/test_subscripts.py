"""The typed-results redesign's measure (issue 24) does not slide back: string-literal subscripts
outside the store boundary and the safety families' ``measure()`` stay under 100."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "count_subscripts.py"


def test_string_subscripts_outside_the_store_stay_under_100():
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    strict = int(re.search(r"^(\d+) outside the store boundary", out, re.M).group(1))
    assert strict < 100, out
