"""The deploy-time unsealer: `sealer controller`.

It follows one branch of a git repository and, for each new commit, unseals every sealed file of
its environments and renders them into a target, all or nothing. Modules, one idea each:

- `service`: the run as the command does it (options, HTTP server, signals, loop, shutdown);
- `source`: the git mirror in the state dir (fetch, ancestry, reading trees and blobs);
- `work`: one file from sealed text to rendered outputs (runs in worker processes too);
- `targets`: `dir:`, `files:` and `cmd:`, each applied atomically;
- `sync`: the cycle and the loop (fail closed, rollback refusal, backoff, audit);
- `state`: the applied commit, kept across restarts; `http`: health, readiness and metrics;
- `errors`: the failure reasons the metrics and the audit log use; `log`: one line per event.

`from sealer._controller import ControllerOptions, run_controller` runs it from Python (loaded on
first use, so importing one module of the package does not load them all). See docs/controller.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import ControllerOptions, ControllerReport, run_controller

__all__ = ["ControllerOptions", "ControllerReport", "run_controller"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
