"""One sealed file, from its committed text to the outputs a target writes.

A pure function of its inputs (the file, the keys the registry accepts, a key lookup), so it runs
the same in the controller's process and in worker processes: parsing YAML is pure Python and a
full render of 1,000 files needs every core. Failures come back as values, not exceptions, so
they cross the process boundary intact and the cycle can report every bad file.
"""

from __future__ import annotations

import base64
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._format import mentions_tokens
from .._keys import Identity
from ..errors import SealerError
from .errors import RenderError, reason_for

if TYPE_CHECKING:
    from .._repository import EnvRules

VALUES_DIR = "_values"  # non-manifest documents (Helm values, app config) under dir:
NO_NAMESPACE = "_"  # not a valid namespace, so it cannot collide with one

_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,252}")
_NAMESPACE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")

Lookup = Callable[[str], Identity | None]


@dataclass(frozen=True)
class Job:
    rel: str  # repository-relative path: names the file in every message
    data: bytes
    env: str
    rules: EnvRules  # the commit's rules for the environment: plain data, so it pickles to workers
    mode: str  # the target kind: dir, files or cmd
    commit: str | None = None  # the commit the file is read from: stamped on rendered Secrets


@dataclass
class Outcome:
    rel: str
    env: str
    ok: bool = True
    sealed: bool = True  # False: no sealed document in the file (a plain manifest), skipped
    reason: str | None = None
    message: str | None = None
    values: int = 0
    kids: tuple[str, ...] = ()
    oldest: int | None = None  # seal time of the file's oldest value
    expiries: tuple[int, ...] = ()  # the expiry of each value that has one (Unix seconds)
    warnings: list[str] = field(default_factory=list)  # expired values opened under on_expiry: warn
    outputs: list[tuple[str, bytes]] = field(default_factory=list)  # (path in the target, bytes)
    notes: list[str] = field(default_factory=list)


def process(job: Job, lookup: Lookup) -> Outcome:
    """Verify, unseal and render one file. Never raises: a failure is an Outcome with a reason."""
    try:
        return _process(job, lookup)
    except SealerError as e:
        return Outcome(job.rel, job.env, ok=False, reason=reason_for(e), message=str(e))
    except RecursionError:
        return Outcome(job.rel, job.env, ok=False, reason="input", message=f"{job.rel}: nested too deeply")
    except Exception as e:  # a bug; its message could quote input, so only its type is kept
        return Outcome(
            job.rel, job.env, ok=False, reason="internal", message=f"{job.rel}: internal error ({type(e).__name__})"
        )


def _process(job: Job, lookup: Lookup) -> Outcome:
    from .._document import load
    from .._fsio import decode_text
    from .._unseal import unseal_file

    text = decode_text(job.data, job.rel)
    if not mentions_tokens(text) and "sealer:" not in text:
        return Outcome(job.rel, job.env, sealed=False)
    sf = load(text, job.rel)
    sealed = [leaf for _, leaf in sf.all_leaves() if leaf.sealed]
    if not sealed and sf.env is None:
        return Outcome(job.rel, job.env, sealed=False)
    kids: set[str] = set()
    oldest: int | None = None
    expiries: list[int] = []
    for leaf in sealed:
        tok = leaf.token(job.rel)
        kids.update(tok.kids)
        oldest = tok.sealed_at if oldest is None else min(oldest, tok.sealed_at)
        if tok.expires_at is not None:
            expiries.append(tok.expires_at)

    # The commit's rules decide which keys still count (retired ones never do), which values are
    # revoked (not_before) or expired, and whose signatures are required: the same rules as `sealer unseal`.
    unsealed = unseal_file(sf, lookup, rules=job.rules, structured=True, path=job.rel)
    outputs, notes = render_outputs(unsealed, job.mode, job.rel, commit=job.commit)
    return Outcome(
        job.rel,
        job.env,
        values=unsealed.values,
        kids=tuple(sorted(kids)),
        oldest=oldest,
        expiries=tuple(sorted(expiries)),
        warnings=unsealed.warnings,
        outputs=outputs,
        notes=notes,
    )


def render_outputs(
    unsealed: Any, mode: str, rel: str, *, commit: str | None = None
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The files (or, for cmd:, the manifest stream) one unsealed file contributes to the target.
    Rendered Secrets carry the file's path and `commit` (`_render.stamp`)."""
    from .._render import render
    from .._unseal import Unsealed

    if mode == "cmd":
        stream, skipped = render([unsealed], "k8s", commit=commit)
        return ([("", stream.encode())] if stream else []), skipped
    outputs: list[tuple[str, bytes]] = []
    notes: list[str] = []
    if mode == "dir":
        values_docs = False
        for d in unsealed.docs:
            if not d.is_manifest:
                values_docs = True
                continue
            one = Unsealed(unsealed.source, unsealed.env, "", [d], 0, path=unsealed.path)
            text, _ = render([one], "k8s", commit=commit)
            outputs.append((manifest_name(d.kind, d.content, rel, d.index), text.encode()))
        if values_docs:
            check_rel(rel)
            text, _ = render([unsealed], "yaml")
            outputs.append((f"{VALUES_DIR}/{rel}", text.encode()))
        return outputs, notes
    if mode == "files":
        for d in unsealed.docs:
            if d.kind != "Secret" or not d.is_manifest:
                notes.append(f"{rel}: document {d.index} is not a Secret; the files: target writes Secrets only")
                continue
            namespace, name = _namespace_name(d.content, rel, d.index)
            merged: dict[str, bytes] = {}
            for key, value in (d.content.get("data") or {}).items():
                merged[_key(key, rel)] = base64.b64decode(str(value))
            for key, value in (d.content.get("stringData") or {}).items():
                merged[_key(key, rel)] = _bytes(value)  # stringData wins, as in Kubernetes
            outputs += [(f"{namespace}/{name}/{k}", v) for k, v in merged.items()]
        return outputs, notes
    raise ValueError(mode)


def manifest_name(kind: str | None, content: Any, rel: str, index: int) -> str:
    """`kind.namespace.name.yaml`: one file per object, unique per object, safe as a file name."""
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise RenderError(f"document {index} has a kind that cannot name a file", file=rel)
    namespace, name = _namespace_name(content, rel, index)
    return f"{kind.lower()}.{namespace}.{name}.yaml"


def _namespace_name(content: Any, rel: str, index: int) -> tuple[str, str]:
    md = content.get("metadata") if isinstance(content, dict) else None
    md = md if isinstance(md, dict) else {}
    name, namespace = md.get("name"), md.get("namespace")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RenderError(
            f"document {index} needs a metadata.name of letters, digits, '.', '-', ':' or '_'",
            file=rel,
            hint="the controller names output files after it",
        )
    if namespace is None or namespace == "":
        return NO_NAMESPACE, name
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise RenderError(f"document {index}: metadata.namespace is not a valid namespace", file=rel)
    return namespace, name


def _key(key: object, rel: str) -> str:
    text = str(key)
    if not _KEY.fullmatch(text) or text in (".", ".."):
        raise RenderError(f"Secret key {text[:60]!r} cannot be a file name", file=rel)
    return text


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat()).encode()
    return str(value).encode()


def check_rel(rel: str) -> None:
    """A repository path is safe to reuse under a target: relative, no `.`/`..`, printable."""
    from .errors import UnsafePath

    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or not rel.isprintable() or "\\" in rel:
        raise UnsafePath("has a path that is not safe to write under the target", file=repr(rel)[1:-1])
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePath("has a file name that is not UTF-8", file=repr(rel)[1:-1]) from None


# --- worker processes ---------------------------------------------------------------------------

_LOOKUP: Lookup | None = None


def init_worker(identity_texts: Sequence[str]) -> None:
    """Runs once in each worker: load the keys; leave SIGTERM and SIGINT to the controller, which
    finishes its cycle before it exits."""
    import signal

    from .._keys import parse_identity

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    table = {i.kid: i for i in (parse_identity(t) for t in identity_texts)}
    global _LOOKUP
    _LOOKUP = table.get


def process_in_worker(jobs: list[Job]) -> list[Outcome]:
    assert _LOOKUP is not None, "init_worker did not run"
    return [process(job, _LOOKUP) for job in jobs]


class Pool:
    """Worker processes for big renders: started on first use, kept for later cycles.

    Workers come from a forkserver (never a fork of this multi-threaded process), get the private
    keys once, through their pipe, at start, and die with the controller (sealer._pool). Jobs are
    taken from their iterable only as workers are ready for them (a few small batches per worker
    in flight), so the blobs a commit's jobs carry are read as they are needed, not all at once.
    """

    MIN_JOBS = 32  # below this, starting workers costs more than it saves
    BATCH = 8  # jobs per message to a worker, at most
    IN_FLIGHT = 2  # batches per worker sent ahead

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: Any = None
        self._kids: tuple[str, ...] = ()

    def map(self, jobs: Iterable[Job], identities: Sequence[Identity], *, count: int) -> list[Outcome]:
        """Every job's outcome, in order. `count`: how many jobs `jobs` yields."""
        if self.workers <= 1 or count < self.MIN_JOBS:
            table = {i.kid: i for i in identities}
            return [process(j, table.get) for j in jobs]
        kids = tuple(sorted(i.kid for i in identities))
        if self._executor is None or kids != self._kids:
            self.close()
            self._executor = self._start(identities)
            self._kids = kids
        size = max(1, min(self.BATCH, count // (self.workers * 4)))
        pending: deque[Any] = deque()
        out: list[Outcome] = []
        try:
            batch: list[Job] = []
            for job in jobs:
                batch.append(job)
                if len(batch) == size:
                    pending.append(self._executor.submit(process_in_worker, batch))
                    batch = []
                    while len(pending) >= self.workers * self.IN_FLIGHT:
                        out += pending.popleft().result()
            if batch:
                pending.append(self._executor.submit(process_in_worker, batch))
            while pending:
                out += pending.popleft().result()
        except BaseException:
            for f in pending:
                f.cancel()
            self.close()  # a broken pool (a worker was killed) is rebuilt next time
            raise
        return out

    def _start(self, identities: Sequence[Identity]) -> Any:
        from .._pool import worker_pool

        preload = ("sealer._controller.work", "sealer._unseal", "sealer._render", "ruamel.yaml")
        keys = [i.encode() for i in identities]
        return worker_pool(self.workers, init_worker, (keys,), start="forkserver", preload=preload)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
