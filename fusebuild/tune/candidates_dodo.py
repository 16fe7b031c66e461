"""doit entry point of a tuning candidate build: `doit -f fusebuild/tune/candidates_dodo.py -d <project>`.

builders.DoitBuilder runs it (with -n N) after writing out/.tune/build.json; like the
project's dodo.py it only binds the task creators: the candidates load when doit asks.
"""
from fusebuild.tune.candidates import CandidateBuild

FUSEBUILD = CandidateBuild.from_settings()
DOIT_CONFIG = FUSEBUILD.doit_config()
task_render, task_compile, task_assemble, task_candidates = FUSEBUILD.task_creators()
