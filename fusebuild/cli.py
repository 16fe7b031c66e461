"""`fusebuild` (also `python -m fusebuild`): the one command line.

Every command is a line of COMMANDS; `fusebuild --help` lists them and every
FUSEBUILD_* setting. Commands that read the task graph (why, dry-run, clean) run
through doit in a folder with a dodo.py, building nothing. Errors print one line and
no traceback; the exit code is 1 for a user error, 2 for an internal one, 0 otherwise.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import settings
from .errors import FusebuildError, printable


def cmd_check(args) -> int:
    """Load and check specs, building nothing: each spec's variants and targets (and how
    each target gets a dynamic parameter), or its error, target limits included. A folder
    is checked as a build reads it, and specs of one folder that share a name are refused
    as the build refuses them."""
    from .spec.dynamic import check_lines, variant_note
    from .spec.load import load_spec, name_clashes, spec_files
    paths = spec_files(args.specs)
    if not paths:
        raise FusebuildError("no spec files (*.yaml, *.yml)", path=", ".join(args.specs),
                             valid="spec files, or folders holding them")
    results = []
    for path in paths:
        try:
            results.append(load_spec(path))
        except FusebuildError as err:
            results.append(err)
    clashes = name_clashes([r for r in results if not isinstance(r, FusebuildError)])
    bad = 0
    for spec in results:
        err = spec if isinstance(spec, FusebuildError) else clashes.get(spec.path)
        if err is not None:
            print(err, file=sys.stderr)
            bad += 1
            continue
        for line in check_lines(spec):
            print(line)
        for v in spec.variants:
            print(f"{spec.name}/{v.name}: targets {', '.join(v.targets)}; mode {v.mode}{variant_note(v)}")
    return 1 if bad else 0


def cmd_schema(args) -> int:
    """Print the JSON Schema of the spec format (for editors: yaml-language-server)."""
    from .backends import TARGETS
    from .spec.schema import spec_schema
    print(json.dumps(spec_schema(TARGETS), indent=1))
    return 0


def cmd_engine(args) -> int:
    from .engine.commands import run
    if not Path("dodo.py").is_file():      # else doit's own error, which names an option we do not have
        raise FusebuildError(f"no dodo.py in {Path.cwd()}: run `fusebuild {args.command}` in a fusebuild project "
                             "folder (one with dodo.py and specs/)")
    if args.command == "why":
        return run(["why", *args.what])
    if args.command == "dry-run":
        return run(["dry-run", *args.tasks])
    if args.command == "orphans":
        return run(["orphans", *(["--remove"] if args.remove else [])])
    return run(["orphans", "--remove"])


def cmd_env(args) -> int:
    from .envs import command
    return command(args.rest)


def cmd_gpu_validate(args) -> int:
    from .run.gpu_validate import main
    return main(args.rest)


def cmd_export(args) -> int:
    from .runtime.export import main
    return main(args.rest)


def cmd_workers(args) -> int:
    """The Dask cluster's workers (FUSEBUILD_SCHEDULER), their resources and what they can run."""
    from .backends import TARGETS
    from .distributed.cluster import SETTING, Cluster, workers_table
    cluster = Cluster.from_settings()
    if cluster is None:
        raise FusebuildError("not set", path=f"environment variable {SETTING}", valid="tcp://host:8786")
    print(workers_table(cluster, TARGETS))
    return 0


def cmd_tune(args) -> int:
    from .tune.command import main
    return main(args.rest)


# name -> (one line of help, handler, how to declare its arguments)
COMMANDS = {
    "check": ("load and check specs without building (file:line errors)", cmd_check,
              lambda p: p.add_argument("specs", nargs="+", help="spec files, or folders of them")),
    "schema": ("print the JSON Schema of the spec format", cmd_schema, lambda p: None),
    "why": ("why a task, artifact (spec/variant/target) or output file would rebuild", cmd_engine,
            lambda p: p.add_argument("what", nargs="*", help="tasks, artifacts or files (none: everything)")),
    "dry-run": ("what `doit build` would run, and why; runs nothing", cmd_engine,
                lambda p: p.add_argument("tasks", nargs="*", help="doit tasks (default: build)")),
    "orphans": ("list out/ folders no spec asks for, and leftovers of killed builds", cmd_engine,
                lambda p: p.add_argument("--remove", action="store_true", help="delete them (= clean)")),
    "clean": ("remove out/ folders no spec asks for, and leftovers of killed builds", cmd_engine, lambda p: None),
    "env": ("toolchain environments: env create NAME | env list", cmd_env,
            lambda p: p.add_argument("rest", nargs=argparse.REMAINDER)),
    "workers": ("list the Dask cluster's workers (FUSEBUILD_SCHEDULER), their resources and stages",
                cmd_workers, lambda p: None),
    "gpu-validate": ("validate built tir-cuda artifacts on this machine's GPU (torch only)", cmd_gpu_validate,
                     lambda p: p.add_argument("rest", nargs=argparse.REMAINDER)),
    "export": ("export DEST [SPEC...]: copy built artifacts + manifests into a folder fusebuild.load reads",
               cmd_export, lambda p: p.add_argument("rest", nargs=argparse.REMAINDER)),
    "tune": ("search each artifact's hints space, measure, record the winner (fusebuild tune --help)", cmd_tune,
             lambda p: p.add_argument("rest", nargs=argparse.REMAINDER)),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fusebuild", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build fused ML operators from YAML specs. `doit build` builds; these commands inspect.",
        epilog="settings (environment variables):\n" + settings.table())
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (line, handler, declare) in COMMANDS.items():
        cp = sub.add_parser(name, help=line, description=line)
        declare(cp)
        cp.set_defaults(handler=handler)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # env, gpu-validate, export and tune have parsers of their own: hand them everything after the name
    if argv and argv[0] in ("env", "gpu-validate", "export", "tune"):
        args = argparse.Namespace(command=argv[0], rest=argv[1:], handler=COMMANDS[argv[0]][1])
    else:
        args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except FusebuildError as err:
        print(err, file=sys.stderr)
        return 1
    except Exception as err:          # noqa: BLE001 - one line, never a traceback (a bug: exit 2)
        print(f"fusebuild {args.command}: internal error: {type(err).__name__}: {printable(str(err))[:500]}",
              file=sys.stderr)
        return 2
