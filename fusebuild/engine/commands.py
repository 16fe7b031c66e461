"""doit commands of the engine: `why`, `dry-run`, `orphans` (nothing here runs a task).

  why [TASK | ARTIFACT | PATH ...]   why each task would run; an artifact
                                     (spec/variant/target, or its folder under out/)
                                     means its four stages, a file means the task
                                     that writes it; no argument: same as dry-run
  dry-run [TASK ...]                 what `doit build` (or `doit TASK ...`) would run,
                                     in order, and why; runs nothing, writes nothing
  orphans [--remove]                 out/ folders no spec asks for any more, and
                                     leftovers of killed builds; --remove deletes them

Reach them as `fusebuild why|dry-run|clean ...` anywhere (that adds them to doit
through `extra_config`), or as `doit why ...` where pyproject.toml registers them
([tool.doit.plugins.command]). They find the project through the `FUSEBUILD` object
that dodo.py defines (engine.tasks.Build).

A dry run cannot know whether a task's output will come out byte-identical (early
cutoff), so a task whose own inputs are unchanged but which depends on one that runs is
listed as `after`: it runs unless its upstream output comes out identical.
"""
from __future__ import annotations

from pathlib import Path

from doit.cmd_base import DoitCmdBase
from doit.control import TaskControl
from doit.exceptions import InvalidCommand

from . import orphans as orph
from .why import reasons

STAGES = ("render", "compile", "assemble", "validate")
COMMANDS = {"why": "fusebuild.engine.commands:Why", "dry-run": "fusebuild.engine.commands:DryRun",
            "orphans": "fusebuild.engine.commands:Orphans"}


def _topo(tasks: dict, selected: list) -> list:
    """Tasks needed by `selected`, each after everything it depends on."""
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        task = tasks[name]
        for dep in list(task.task_dep) + list(task.setup_tasks):
            visit(dep)
        order.append(task)
    for name in selected:
        visit(name)
    return order


def plan_run(tasks: dict, selected: list, dep_manager) -> list:
    """[(state, task, reason)] in run order; state is 'run', 'after' or 'ok'."""
    result, runs = [], set()
    for task in _topo(tasks, selected):
        upstream = [d for d in task.task_dep if d in runs]
        if not task.actions:
            if upstream:
                runs.add(task.name)
            continue
        rs = reasons(task, dep_manager)
        if rs and upstream and all(r.startswith("input not built yet") for r in rs):
            rs = []                 # its inputs come from an upstream task that runs first
        if rs:
            state, why = "run", "; ".join(rs[:2]) + (f" (+{len(rs) - 2} more)" if len(rs) > 2 else "")
        elif upstream:
            state, why = "after", f"after {upstream[0]} (skipped if its output comes out byte-identical)"
        else:
            state, why = "ok", "up to date"
        if state != "ok":
            runs.add(task.name)
        result.append((state, task, why))
    return result


class _Base(DoitCmdBase):
    def _control(self, pos_args=(), select=True):
        """doit's own task selection (wildcards, `build:spec`), with the implicit
        file_dep -> target dependencies added."""
        control = TaskControl(self.task_list)
        if select:
            control.process(list(pos_args) or self.sel_tasks or ["build"])
        return control


class DryRun(_Base):
    doc_purpose = "show what `doit build` would run, and why; runs nothing"
    doc_usage = "[TASK ...]"
    doc_description = None

    def _execute(self, pos_args):
        control = self._control(pos_args)
        rows = plan_run(control.tasks, control.selected_tasks, self.dep_manager)
        width = max((len(t.name) for s, t, _ in rows if s != "ok"), default=0)
        for state, task, why in rows:
            if state != "ok":
                self.outstream.write(f"{state:<5}  {task.name:<{width}}  {why}\n")
        n_run = sum(1 for s, _, _ in rows if s == "run")
        n_after = sum(1 for s, _, _ in rows if s == "after")
        n_ok = sum(1 for s, _, _ in rows if s == "ok")
        self.outstream.write(f"dry run: {n_run} task(s) would run, {n_after} more after them unless cut off "
                             f"early, {n_ok} up to date; nothing was run\n")
        return 0


class Why(_Base):
    doc_purpose = "say why a task, artifact or output file would rebuild (without building)"
    doc_usage = "[TASK | spec/variant/target | PATH ...]"
    doc_description = None

    def _execute(self, pos_args):
        if not pos_args:
            return DryRun._execute(self, [])
        tasks = self._control(select=False).tasks
        by_target = {Path(t).resolve(): task for task in tasks.values() for t in task.targets}
        for arg in pos_args:
            for task in self._resolve(arg, tasks, by_target):
                rs = reasons(task, self.dep_manager)
                self.outstream.write(f"{task.name}: {'; '.join(rs) if rs else 'up to date'}\n")
        return 0

    @staticmethod
    def _resolve(arg, tasks, by_target) -> list:
        if arg in tasks:
            return [t for t in _topo(tasks, [arg]) if t.actions] if not tasks[arg].actions else [tasks[arg]]
        path = Path(arg).resolve()
        if path in by_target:
            return [by_target[path]]
        ids = {t.name.partition(":")[2] for t in tasks.values() if t.name.partition(":")[0] in STAGES}
        aid = arg.strip("/")
        if aid not in ids:      # a folder under out/: out/<spec>/<variant>/<target>
            parts = Path(arg).parts
            aid = "/".join(parts[-3:]) if len(parts) >= 3 else aid
        if aid in ids:
            return [tasks[f"{s}:{aid}"] for s in STAGES if f"{s}:{aid}" in tasks]
        raise InvalidCommand(f"'{arg}' is not a task, an artifact (spec/variant/target) or an output file")


class Orphans(_Base):
    doc_purpose = "list (or --remove) out/ folders no spec asks for, and leftovers of killed builds"
    doc_usage = "[--remove]"
    doc_description = None
    cmd_options = ({"name": "remove", "long": "remove", "type": bool, "default": False,
                    "help": "delete them"},)

    def _execute(self, remove=False):
        build = self.loader.namespace.get("FUSEBUILD") if getattr(self.loader, "namespace", None) else None
        if build is None:
            raise InvalidCommand("orphans: this dodo.py does not define FUSEBUILD (fusebuild.engine.tasks.Build)")
        project = build.project
        found, leftovers = orph.find(project.out, project.artifacts, orph.protected_specs(project.errors))
        for p in found + leftovers:
            self.outstream.write(f"{'removed' if remove else 'orphan'}  {p}\n")
        if remove:
            orph.remove(found + leftovers)
        verb = "removed" if remove else "found (remove with --remove, or `python -m fusebuild clean`)"
        self.outstream.write(f"{len(found)} orphaned folder(s), {len(leftovers)} leftover(s) {verb}\n")
        return 0


def run(argv) -> int:
    """`fusebuild why|dry-run|clean ...`: doit with the engine's commands added."""
    from doit.doit_cmd import DoitMain
    args = list(argv)
    if args and args[0] == "clean":
        args = ["orphans", "--remove", *args[1:]]
    return DoitMain(extra_config={"COMMAND": dict(COMMANDS)}).run(args)
