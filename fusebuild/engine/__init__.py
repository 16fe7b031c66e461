"""The build engine: what fusebuild adds around doit's runner, without forking doit.

doit decides *whether* a task runs; these modules make that decision explainable,
durable and visible:

  tasks        `Build`: the task creators dodo.py hands doit, and DOIT_CONFIG.
  uptodate     `fresh(key)`: the one up-to-date check of a stage. Stores its key's digest
               (fast compare) and its fields (so a change can be named field by field),
               and fingerprints the task's outputs (a damaged output is never current).
  why          one line per task saying why it runs (or would run), from doit's own status
               plus the stored key fields; used live, by `why` and by the dry run.
  depdb        commits each finished task's record to doit's sqlite3 DB as it finishes
               (doit itself writes only at the end of a run), in WAL mode.
  progress     the reporter: why lines, [n/N] progress (live on a terminal, plain in CI),
               quiet mode, then the summary, orphan note and build report.
  summary      the summary table (within 120 columns) and one line per target that a
               missing toolchain or device kept from running, with the command that fixes it.
  orphans      out/ folders no spec asks for any more, and leftovers of killed builds.
  buildreport  out/report.md and out/report.html: the last build, browsable.
  commands     doit commands `why`, `dry-run`, `orphans` (also `fusebuild why|dry-run|clean`).
"""
