"""fusebuild: declarative builds of fused ML operators.

YAML spec -> (spec) typed graph -> (graph) fused groups -> (backends) rendered source ->
compiled, assembled artifact -> (validate) compared with the torch reference. The doit
task graph (tasks) drives the stages (stages); planning (plan) never runs anything.
"""
__version__ = "0.1.0"
