"""Count string-literal subscripts (``record["info"]``) in the package: the measure of how much
code hands untyped dicts to other code (issue 24's redesign tracks it falling).

    python scripts/count_subscripts.py            # total and the 15 files with most
    python scripts/count_subscripts.py --all      # every file

Counted in ``src/safeadapt``: ``x["key"]`` reads and writes, and apart ``x.get("key")`` calls.
The second line counts what the acceptance bounds: subscripts outside the store boundary
(``results/``, where JSON becomes typed objects) and the safety families' own ``measure()``.
The third line also leaves out the store boundary that lives outside ``results/``: the
functions named in ``STORE_FUNCTIONS``, each of which reads or writes one stored file and
turns it into (or out of) a typed object -- listed by name, so the list is reviewed.
"""

from __future__ import annotations

import argparse
import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "safeadapt"
BOUNDARY = "safeadapt/results/"
# file -> functions that are the store boundary of one stored format (and that format)
STORE_FUNCTIONS = {
    "safeadapt/monitor/reference.py": ("save", "load"),  # an export's monitoring reference
    "safeadapt/monitor/monitor.py": ("_state",),  # the monitor's state folder
    "safeadapt/study/preflight.py": ("_load_stored",),  # the cached pre-flight results
    "safeadapt/study/config.py": ("from_dict", "to_dict"),  # a study's YAML / JSON form
    "safeadapt/study/store.py": ("save",),  # a run's record.json
    "safeadapt/files.py": ("read_safetensors",),  # a checksummed tensors file's header
}


def in_functions(tree: ast.AST, names: tuple[str, ...]) -> int:
    """String-literal subscripts inside the functions (or methods) of ``tree`` so named."""
    return sum(
        count(node)[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name in names
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
    exempt = stored = 0
    for path in sorted(ROOT.rglob("*.py")):
        name = str(path.relative_to(ROOT.parent))
        tree = ast.parse(path.read_text())
        subs[name], gets[name] = count(tree)
        exempt += subs[name] if name.startswith(BOUNDARY) else in_functions(tree, ("measure",))
        stored += in_functions(tree, STORE_FUNCTIONS.get(name, ()))
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
    print(
        f"{total - exempt - stored} outside those and the store functions outside results/ "
        f"(STORE_FUNCTIONS, {stored} there)"
    )
    for name, n in subs.most_common(None if args.all else 15):
        if n:
            print(f"{n:5d}  {name}  (+{gets[name]} .get)")


if __name__ == "__main__":
    main()
