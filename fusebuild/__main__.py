"""`python -m fusebuild check SPEC...`: load and check specs without building anything.

Prints each spec's variants and targets, or the error (file:line: field: message) with no
traceback. Exit code 1 if any spec is bad.
"""
from __future__ import annotations

import argparse
import sys

from .errors import FusebuildError
from .spec import load_spec


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusebuild", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load and check specs (no build)")
    check.add_argument("specs", nargs="+")
    args = parser.parse_args(argv)
    bad = 0
    for path in args.specs:
        try:
            spec = load_spec(path)
        except FusebuildError as err:
            print(err, file=sys.stderr)
            bad += 1
            continue
        for v in spec.variants:
            print(f"{spec.name}/{v.name}: targets {', '.join(v.targets)}; mode {v.mode}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
