"""The sync cycle and the loop around it.

One cycle: fetch the branch; if its head is the applied commit (and the target is still there),
stop: no YAML is read. Otherwise refuse a head that does not descend from the applied commit
(unless told to allow it), read the commit's `.sealer.yaml` and registry, select the sealed files
of our environments by its path rules, unseal and render every one of them, and only if all
succeed, write the audit lines, swap the target and record the commit. Any failure leaves the
target and the state exactly as they were: the last good output keeps being served.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._audit import AuditError, AuditLog, Event, Head
from .._audit.reasons import tagged
from .._config import CONFIG_NAME, KEYS_DIR, Config
from .._fsio import MAX_FILE_BYTES, decode_text
from .._keys import Identity
from .._registry import Registry
from ..errors import ConfigError, SealerError
from .errors import REASONS, KeysUnavailable, RenderError, RollbackRefused, UnsafePath, reason_for
from .http import Metrics
from .log import EventLog
from .source import BlobReader, Entry, Mirror, normalize_url, redact
from .state import KeyInfo, State, StateDir
from .targets import Target
from .work import Job, Outcome, Pool, check_rel

SYMLINK = "120000"
MAX_TOTAL_BYTES = 256 * 1024 * 1024  # the environments' files of one commit, together
FILE_EVENT_REASONS = ("input", "unseal", "expired", "identity", "render", "unsafe_path", "internal")


@dataclass
class Settings:
    repo: str  # a local path or a URL git understands
    branch: str
    envs: tuple[str, ...]
    target: Target
    state_dir: Path
    identity_files: tuple[str, ...] = ()
    allow_rollback: bool = False
    audit_log: Path | None = None  # default: STATE_DIR/audit.log
    actor: str | None = None
    workers: int = 1
    max_file_bytes: int = MAX_FILE_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES
    fetch_timeout: float = 120.0


@dataclass
class Result:
    ok: bool
    changed: bool
    commit: str | None
    reason: str | None = None
    file: str | None = None
    message: str | None = None
    files: int = 0
    values: int = 0
    seconds: float = 0.0
    failures: list[tuple[str | None, str, str]] = field(default_factory=list)  # (file, reason, message)


def next_delay(interval: float, failures: int, cap: float) -> float:
    """Seconds until the next cycle: the interval, or after failures an exponential backoff
    (interval, 2×, 4×, …) capped at `cap` (never below the interval), with ±10 % jitter so
    replicas that failed together do not retry together."""
    if failures <= 0:
        return interval
    delay = min(max(cap, interval), interval * 2 ** min(failures - 1, 30))
    return float(delay * random.uniform(0.9, 1.1))  # noqa: S311 - jitter, not security


class Controller:
    """Owns the state dir for its lifetime (flock); call `close()` when done."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        log: EventLog | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.s = settings
        self.log = log or EventLog()
        self.metrics = metrics
        self.environ = os.environ if environ is None else environ
        self.url = normalize_url(settings.repo)
        self.dir = StateDir(settings.state_dir)
        self.dir.lock()
        try:
            self.state = self.dir.load()
            # Refuses a target another controller owns, before anything is fetched.
            settings.target.claim(self.dir.path, repo=redact(self.url), branch=settings.branch, envs=settings.envs)
        except SealerError:
            self.dir.unlock()
            raise
        self.mirror = Mirror(self.dir.mirror, self.url, settings.branch, timeout=settings.fetch_timeout)
        self.audit = AuditLog(
            settings.audit_log or self.dir.audit_log, actor=settings.actor, on_append=self._audit_head
        )
        self.pool = Pool(settings.workers)
        self.identities: list[Identity] = []
        self.keys_loaded = False
        self.last: Result | None = None
        self._failure_seen: tuple[object, ...] | None = None
        self._audit_new: Head | None = None  # the audit head not yet named in a log line
        self._cancel: threading.Event | None = None  # set: cut a running fetch short (SIGTERM)
        if metrics is not None:
            metrics.prime(REASONS)
            if self.state.commit is not None:
                metrics.applied(self.state)

    def close(self) -> None:
        self.pool.close()
        self.dir.unlock()

    # --- readiness ------------------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        last = self.last
        if not self.keys_loaded:
            return False, "not ready: no private key loaded"
        if last is None:
            return False, "not ready: no sync yet"
        if not last.ok:
            return False, f"not ready: the last sync failed ({last.reason})"
        other = self.s.target.foreign()
        if other is not None:
            return False, f"not ready: the target now holds the output of {other}"
        return True, f"ready: {self.state.commit or 'nothing applied'}"

    # --- one cycle ------------------------------------------------------------------------------

    def cycle(self) -> Result:
        """Run one sync. Never raises for a sync failure: the Result says what happened."""
        started = time.monotonic()
        if self.metrics is not None:
            self.metrics.syncs.inc()
        commit: str | None = None
        try:
            self._load_keys()
            commit = self.mirror.fetch(self._cancel)
            if self._unchanged(commit):
                result = Result(True, False, commit, files=self.state.files, values=self.state.values)
            else:
                result = self._apply(commit)
        except SealerError as e:
            # Errors about the commit's config name the private copy; name the repository's file.
            checkout = f"{self.dir.checkout}/"
            file = e.file.removeprefix(checkout) if e.file else None
            result = self._failed(commit, [(file, reason_for(e), str(e).replace(checkout, ""))])
        except Exception as e:  # a bug: keep the controller alive, say which exception, not its text
            if self.environ.get("SEALER_DEBUG") == "1":
                import traceback

                self.log("debug", level="error", traceback=repr(traceback.format_exc()))
            result = self._failed(commit, [(None, "internal", f"internal error ({type(e).__name__})")])
        result.seconds = time.monotonic() - started
        self._finish(result)
        return result

    def _load_keys(self) -> None:
        """Load the private keys once; until that works every cycle retries (a mounted Secret may
        arrive late) and fails with reason `identity`."""
        if self.keys_loaded:
            return
        from .._identities import find_identities

        ids = find_identities(self.s.identity_files, environ=self.environ)
        try:
            self.identities = ids.identities()
        except SealerError as e:
            raise KeysUnavailable(f"cannot load the private keys: {e}") from None
        self.keys_loaded = True
        self.log("keys-loaded", source=ids.source, kids=",".join(i.kid for i in self.identities))

    def _unchanged(self, commit: str) -> bool:
        st = self.state
        return (
            st.commit == commit
            and st.envs == list(self.s.envs)
            and st.target == self.s.target.spec
            and self.s.target.holds(commit, self.s.envs)
        )

    def _apply(self, commit: str) -> Result:
        applied = self.state.commit
        note = None
        if applied is not None and applied != commit and not self.mirror.is_ancestor(applied, commit):
            if not self.s.allow_rollback:
                raise RollbackRefused(
                    f"{commit[:12]} does not descend from the applied commit {applied[:12]} "
                    "(history was rewritten or force-pushed)",
                    hint="the last good output stays; pass --allow-rollback to accept this history",
                )
            note = f"accepted {commit[:12]}, which does not descend from {applied[:12]} (--allow-rollback)"
            self.log("rollback-allowed", level="warn", commit=commit, applied=applied)
        entries = self.mirror.tree(commit)
        with self.mirror.blobs() as blobs:
            cfg, registries = self._config(commit, entries, blobs)
            jobs, count = self._select(commit, cfg, registries, entries, blobs)
            outcomes = self.pool.map(jobs, self.identities, count=count)
        bad = [o for o in outcomes if not o.ok]
        if bad:
            return self._failed(commit, [(o.rel, o.reason or "internal", o.message or "") for o in bad], outcomes)
        sealed = [o for o in outcomes if o.sealed]
        outputs = _collect(sealed)
        values = sum(o.values for o in sealed)
        for env in self.s.envs:
            if not any(o.env == env for o in sealed):
                self.log("note", level="warn", env=env, detail="no sealed files for this environment in the commit")
        for o in sealed:
            for w in o.warnings:
                self.log("expired-value", level="warn", env=o.env, file=o.rel, commit=commit, detail=w)
        events = [
            Event("unseal", env=o.env, file=o.rel, kids=o.kids, commit=commit, reason=_reason(note, o)) for o in sealed
        ]
        self.audit.append_many(events)
        self.mirror.pin(commit)
        self.s.target.apply(outputs, commit=commit, envs=self.s.envs)
        state = State(
            commit=commit,
            applied_at=time.time(),
            envs=list(self.s.envs),
            target=self.s.target.spec,
            files=len(sealed),
            values=values,
            oldest=_oldest(sealed),
            expiries=_expiries(sealed),
            warn_before={env: cfg.environments[env].policy.warn_before for env in self.s.envs},
            keys={
                env: [KeyInfo(k.kid, k.created.timestamp(), k.state) for k in reg.keys if reg.opens(k.kid)]
                for env, reg in registries.items()
            },
        )
        self.dir.save(state)
        self.state = state
        try:
            self.audit.append(Event("apply", file=self.s.target.spec, commit=commit, reason=note))
        except AuditError as e:  # applied already; say so rather than report a failed sync
            self.log("audit-error", level="error", error=str(e))
        if self.metrics is not None:
            self.metrics.values.inc(values)
            self.metrics.applied(state)
        for o in outcomes:
            for n in o.notes:
                self.log("note", detail=n)
        skipped = sum(1 for o in outcomes if not o.sealed)
        message = f"{skipped} files without sealed values skipped" if skipped else None
        return Result(True, True, commit, files=len(sealed), values=values, message=message)

    def _config(self, commit: str, entries: list[Entry], blobs: BlobReader) -> tuple[Config, dict[str, Registry]]:
        """The commit's .sealer.yaml and registries, read from its blobs by the library's own
        loaders: no checkout is written."""
        by_path = {e.path: e for e in entries}
        wanted = {CONFIG_NAME: by_path.get(CONFIG_NAME)}
        wanted.update({f"{KEYS_DIR}/{env}.yaml": by_path.get(f"{KEYS_DIR}/{env}.yaml") for env in self.s.envs})
        if wanted[CONFIG_NAME] is None:
            raise ConfigError(f"commit {commit[:12]} has no {CONFIG_NAME} at the top of the repository")
        present = {rel: e for rel, e in wanted.items() if e is not None}
        for rel, e in present.items():
            if e.mode == SYMLINK or e.kind != "blob":
                raise UnsafePath("is a symbolic link or not a file; sealer does not follow links", file=rel)
            if e.size is not None and e.size > self.s.max_file_bytes:
                raise UnsafePath(f"is larger than the {self.s.max_file_bytes} byte limit", file=rel)
        limit = self.s.max_file_bytes
        texts = {rel: decode_text(blobs.read(e.oid, limit=limit, name=rel), rel) for rel, e in present.items()}
        root = self.dir.checkout  # names the files in messages; nothing is written there
        cfg = Config.load(root, text=texts[CONFIG_NAME])
        for env in self.s.envs:
            if env not in cfg.environments:
                raise ConfigError(
                    f"environment {env!r} is not in {CONFIG_NAME} of commit {commit[:12]}",
                    hint=f"known: {', '.join(cfg.environments) or 'none'}",
                )
        return cfg, {env: Registry.load(root, env, text=texts.get(f"{KEYS_DIR}/{env}.yaml", "")) for env in self.s.envs}

    def _select(
        self, commit: str, cfg: Config, registries: Mapping[str, Registry], entries: list[Entry], blobs: BlobReader
    ) -> tuple[Iterator[Job], int]:
        """Our environments' files by the repository's one file rule (`_repository.select`):
        links, submodules and oversized files there are refused, not skipped: fail closed. So is a
        commit whose files together pass the total cap, from the tree's sizes, before any of their
        content is read. The jobs (and count) come back lazily: each blob is read as its job is
        taken."""
        from .._repository import Entry as TreeEntry
        from .._repository import Repository

        listing = {
            e.path: TreeEntry(e.path, "link" if e.mode == SYMLINK else "file" if e.kind == "blob" else "other", e.size)
            for e in entries
        }
        by_path = {e.path: e for e in entries}
        repo = Repository(cfg, dict(registries))  # the commit's repository, read from its blobs
        chosen = repo.select(listing.values(), self.s.envs, max_bytes=self.s.max_file_bytes)
        for f in chosen:
            check_rel(f.rel)
        total = sum(by_path[f.rel].size or 0 for f in chosen)
        if total > self.s.max_total_bytes:
            raise UnsafePath(
                f"commit {commit[:12]}: the {len(chosen)} files of {', '.join(self.s.envs)} are {total} bytes "
                f"together, over the {self.s.max_total_bytes} byte limit; nothing of it was read",
                hint="split the environment, or raise --max-total-bytes",
            )
        rules = {env: repo.rules(env) for env in self.s.envs}
        kind, limit = self.s.target.kind, self.s.max_file_bytes
        jobs = (
            Job(f.rel, blobs.read(by_path[f.rel].oid, limit=limit, name=f.rel), f.env, rules[f.env], kind, commit)
            for f in chosen
        )
        return jobs, len(chosen)

    # --- outcome --------------------------------------------------------------------------------

    def _failed(
        self,
        commit: str | None,
        failures: list[tuple[str | None, str, str]],
        outcomes: list[Outcome] | None = None,
    ) -> Result:
        """Count, log and audit a failed cycle. The target and state were not touched."""
        env_of = {o.rel: o.env for o in outcomes or []}
        for file, reason, message in failures:
            if self.metrics is not None:
                self.metrics.failed(reason, file)
            self.log("sync-error", level="error", reason=reason, file=file, commit=commit, error=message)
        seen = (commit, tuple(failures))
        if seen != self._failure_seen:  # a failure that repeats every retry is audited once
            events = [
                Event(
                    "unseal" if file is not None and reason in FILE_EVENT_REASONS else "sync",
                    result="fail",
                    env=env_of.get(file or ""),
                    file=file,
                    commit=commit,
                    reason=tagged(reason, message),
                )
                for file, reason, message in failures
            ]
            try:
                self.audit.append_many(events)
                self._failure_seen = seen
            except AuditError as e:
                self.log("audit-error", level="error", error=str(e))
        file, reason, message = failures[0]
        return Result(False, False, commit, reason, file, message, failures=failures)

    def _finish(self, result: Result) -> None:
        self.last = result
        ms = round(result.seconds * 1000, 1)
        entries, digest = self._audit_fields()
        if self.metrics is not None:
            self.metrics.expiry_check()  # values expire between commits too
        if result.ok:
            self._failure_seen = None
            if self.metrics is not None:
                self.metrics.succeeded()
            self.log(
                "sync",
                result="applied" if result.changed else "unchanged",
                commit=result.commit,
                files=result.files,
                values=result.values,
                note=result.message,
                ms=ms,
                audit_entries=entries,
                audit_head=digest,
            )
        else:
            self.log(
                "sync",
                level="error",
                result="failed",
                reason=result.reason,
                file=result.file,
                failures=len(result.failures),
                commit=result.commit,
                ms=ms,
                audit_entries=entries,
                audit_head=digest,
            )

    def _audit_head(self, head: Head) -> None:
        """After each append (and at start): export the audit log's head on /metrics; the next
        `start` or `sync` line names it too. Kept outside the file, the head is what `sealer audit
        verify --head` checks the log against later."""
        self._audit_new = head
        if self.metrics is not None:
            self.metrics.audit_appended(head.entries, head.hash)

    def _audit_fields(self) -> tuple[int | None, str | None]:
        """`audit_entries` and `audit_head` for a log line: the head, if it moved since the last
        line named it (None is left out of the line)."""
        head, self._audit_new = self._audit_new, None
        return (None, None) if head is None else (head.entries, head.hash)

    # --- the loop -------------------------------------------------------------------------------

    def run(self, *, interval: float, max_backoff: float, once: bool, stop: threading.Event) -> int:
        """Cycle until `stop` is set (SIGTERM): a running cycle always finishes first. With `once`,
        one cycle, and its result is the exit status."""
        self._cancel = stop
        try:
            self._audit_head(self.audit.head())
        except AuditError as e:
            self.log("audit-error", level="error", error=str(e))
        entries, digest = self._audit_fields()
        self.log(
            "start",
            repo=redact(self.url),
            branch=self.s.branch,
            envs=",".join(self.s.envs),
            target=self.s.target.spec,
            state_dir=str(self.dir.path),
            applied=self.state.commit,
            workers=self.s.workers,
            audit_entries=entries,
            audit_head=digest,
        )
        failures = 0
        while True:
            result = self.cycle()
            if once:
                return 0 if result.ok else 1
            if stop.is_set():
                break
            failures = 0 if result.ok else failures + 1
            delay = next_delay(interval, failures, max_backoff)
            if failures:
                self.log("backoff", failures=failures, seconds=round(delay, 2))
            if stop.wait(delay):
                break
        self.log("stop", applied=self.state.commit)
        return 0


def _collect(outcomes: list[Outcome]) -> list[tuple[str, bytes]]:
    """All outputs in file order; two files producing the same output path is a render error."""
    owner: dict[str, str] = {}
    out: list[tuple[str, bytes]] = []
    for o in sorted(outcomes, key=lambda o: o.rel):
        for path, data in o.outputs:
            if path and path in owner:
                raise RenderError(f"defines {path}, which {owner[path]} defines too", file=o.rel)
            owner[path] = o.rel
            out.append((path, data))
    return out


def _reason(note: str | None, o: Outcome) -> str | None:
    """An unseal line's reason, noting expired values applied under on_expiry: warn."""
    if not o.warnings:
        return note
    late = f"applied {len(o.warnings)} expired value(s) with a warning (on_expiry: warn)"
    return f"{note}; {late}" if note else late


def _expiries(outcomes: list[Outcome]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for o in outcomes:
        if o.expiries:
            out.setdefault(o.env, []).extend(o.expiries)
    return {env: sorted(times) for env, times in out.items()}


def _oldest(outcomes: list[Outcome]) -> dict[str, int]:
    oldest: dict[str, int] = {}
    for o in outcomes:
        if o.oldest is not None:
            oldest[o.env] = min(oldest.get(o.env, o.oldest), o.oldest)
    return oldest
