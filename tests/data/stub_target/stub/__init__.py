"""The example target of docs/architecture.md's "add a target" recipe (tests only)."""
