"""Count string-literal subscripts (``record["info"]``) in the package: the measure of how much
code hands untyped dicts to other code (issue 24's redesign tracks it falling).

    python scripts/count_subscripts.py            # total and the 15 files with most
    python scripts/count_subscripts.py --all      # every file

Counted in ``src/safeadapt``: ``x["key"]`` reads and writes, and apart ``x.get("key")`` calls.
The second line counts what the acceptance bounds: subscripts outside the store boundary
(``results/``, where JSON becomes typed objects) and the safety families' own ``measure()``.
"""

from __future__ import annotations

import argparse
import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "safeadapt"
BOUNDARY = "safeadapt/results/"


def in_measure(tree: ast.AST) -> int:
    """String-literal subscripts inside the functions named ``measure`` of ``tree``."""
    return sum(
        count(node)[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "measure"
    )


def count(tree: ast.AST) -> tuple[int, int]:
    """(``x["key"]`` subscripts, ``x.get("key")`` calls) in ``tree``."""
    subs = gets = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            key = node.slice
            subs += isinstance(key, ast.Constant) and isinstance(key.value, str)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            gets += 1
    return subs, gets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="list every file")
    args = parser.parse_args()
    subs, gets = Counter(), Counter()
    exempt = 0
    for path in sorted(ROOT.rglob("*.py")):
        name = str(path.relative_to(ROOT.parent))
        tree = ast.parse(path.read_text())
        subs[name], gets[name] = count(tree)
        exempt += subs[name] if name.startswith(BOUNDARY) else in_measure(tree)
    files = sum(1 for v in subs.values() if v)
    total = sum(subs.values())
    print(
        f"{total} string-literal subscripts in {files} of {len(subs)} files; "
        f"{sum(gets.values())} .get(...) calls with a string key besides"
    )
    print(
        f"{total - exempt} outside the store boundary ({BOUNDARY}) and the safety families' "
        f"measure() ({exempt} there)"
    )
    for name, n in subs.most_common(None if args.all else 15):
        if n:
            print(f"{n:5d}  {name}  (+{gets[name]} .get)")


if __name__ == "__main__":
    main()
