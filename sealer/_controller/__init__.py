"""The deploy-time unsealer: `sealer controller`.

It follows one branch of a git repository and, for each new commit, unseals every sealed file of
its environments and renders them into a target, all or nothing. Modules, one idea each:

- `source`: the git mirror in the state dir (fetch, ancestry, reading trees and blobs);
- `work`: one file from sealed text to rendered outputs (runs in worker processes too);
- `targets`: `dir:`, `files:` and `cmd:`, each applied atomically;
- `sync`: the cycle and the loop (fail closed, rollback refusal, backoff, audit);
- `state`: the applied commit, kept across restarts; `http`: health, readiness and metrics;
- `errors`: the failure reasons the metrics and the audit log use; `log`: one line per event.

See docs/controller.md.
"""
