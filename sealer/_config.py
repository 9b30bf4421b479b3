"""The repository's sealer configuration: `.sealer.yaml` (environments, path rules, value rules)
and the public-key registry `keys/ENV.yaml`.

Both are small, human-edited, committed files. They are read with a safe loader and written
atomically; the registry is ours, so we rewrite it whole.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._fsio import atomic_write, read_text
from .errors import ConfigError, EnvironmentMismatch, UsageError

if TYPE_CHECKING:
    from ._registry import Registry

CONFIG_NAME = ".sealer.yaml"
KEYS_DIR = "keys"
_ENV_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class Glob:
    """A compiled path glob: `**` spans directories (`**/` also matches no directory), `*` and `?`
    stay inside one path segment, as in .gitignore; every other character is itself.

    Matching runs the pattern as an automaton over the path, one character at a time (the sets of
    positions it can be in are cached as they are met), so it takes time linear in the path
    whatever the pattern. A backtracking regex would not: `**a**a**a**a**a**a**a**b` against a
    long path costs seconds per path, and `.sealer.yaml` is written by anyone with a commit."""

    _CACHE_LIMIT = 4096

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        steps: list[tuple[str, str]] = []
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                steps.append(("dirs", ""))
                i += 3
            elif pattern.startswith("**", i):
                steps.append(("any", ""))
                i += 2
            elif pattern[i] == "*":
                steps.append(("star", ""))
                i += 1
            elif pattern[i] == "?":
                steps.append(("one", ""))
                i += 1
            else:
                steps.append(("lit", pattern[i]))
                i += 1
            if len(steps) > 1 and {steps[-2][0], steps[-1][0]} in ({"any"}, {"any", "star"}):
                steps[-2:] = [("any", "")]  # `***`, `****`: one span of anything
        n = 0
        while n < len(steps) and steps[n][0] == "lit":
            n += 1
        self._prefix = "".join(c for _kind, c in steps[:n])
        self._steps = tuple(steps[n:])
        self._start = self._closure({0})
        self._moves: dict[tuple[frozenset[int], str], frozenset[int]] = {}

    def __repr__(self) -> str:
        return f"Glob({self.pattern!r})"

    def fullmatch(self, text: str) -> bool:
        if not text.startswith(self._prefix):
            return False
        states = self._start
        end = len(self._steps)
        for c in text[len(self._prefix) :]:
            key = (states, c)
            nxt = self._moves.get(key)
            if nxt is None:
                if len(self._moves) >= self._CACHE_LIMIT:
                    self._moves.clear()
                nxt = self._moves[key] = self._step(states, c)
            states = nxt
            if not states:
                return False
        return end in states

    # States: i (0 <= i <= len(steps)) is "before step i"; -1 - i is "inside the directories of
    # the `**/` at step i" (some characters read, a `/` still to come).

    def _closure(self, states: set[int]) -> frozenset[int]:
        todo, seen = list(states), set(states)
        while todo:
            i = todo.pop()
            if 0 <= i < len(self._steps) and self._steps[i][0] in ("star", "any", "dirs") and i + 1 not in seen:
                seen.add(i + 1)  # each of them may match nothing
                todo.append(i + 1)
        return frozenset(seen)

    def _step(self, states: frozenset[int], c: str) -> frozenset[int]:
        out: set[int] = set()
        for i in states:
            if i < 0:
                out.add(i)  # still inside the directories
                if c == "/":
                    out.add(-i)  # the `/` that ends them: on to the step after the `**/` (-1 - i)
                continue
            if i == len(self._steps):
                continue
            kind, lit = self._steps[i]
            if kind == "lit":
                if c == lit:
                    out.add(i + 1)
            elif kind == "one":
                if c != "/":
                    out.add(i + 1)
            elif kind == "star":
                if c != "/":
                    out.add(i)
            elif kind == "any":
                out.add(i)
            else:  # dirs
                out.add(-1 - i)
                if c == "/":
                    out.add(i + 1)
        return self._closure(out)


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> Glob:
    """The compiled form of a path glob of `.sealer.yaml` (environment paths, rules, scan excludes)."""
    return Glob(pattern)


@dataclass(frozen=True)
class ValueRule:
    """Which leaves of non-Secret documents get sealed, as SOPS's encrypted_regex/unencrypted_regex."""

    files: str
    encrypted_regex: str | None = None
    unencrypted_regex: str | None = None

    def selects(self, value_path: str) -> bool:
        if self.encrypted_regex is not None and not re.search(self.encrypted_regex, value_path):
            return False
        return not (self.unencrypted_regex is not None and re.search(self.unencrypted_regex, value_path))


_DURATION = re.compile(r"([0-9]+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """`90d`, `12h`, `2w`, `1w3d`: seconds. Policies are written by people, so say what is wrong."""
    text = str(text).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration like 90d, 12h or 2w")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def parse_expires(text: str, now: int) -> int:
    """`--expires`: a duration after `now` (`90s`, `12h`, `30d`) or an RFC 3339 time with its
    offset (`2027-01-31T00:00:00Z`), as Unix seconds. A ValueError says what is wrong."""
    text = str(text).strip()
    if text[:1].isdigit() and text[-1:] in _UNITS:
        return now + parse_duration(text)
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text.upper()) if re.fullmatch(_RFC3339, text) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValueError(
            f"{text!r} is neither a duration like 90s, 12h or 30d nor an RFC 3339 time like 2027-01-31T00:00:00Z"
        )
    return int(when.timestamp())


_RFC3339 = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[-+][0-9]{2}:[0-9]{2})"
ON_EXPIRY = ("refuse", "warn")
WARN_BEFORE = 14 * 86400  # default `warn_before`


@dataclass(frozen=True)
class Policy:
    """Per-environment limits that `sealer status` (and CI through it) enforces."""

    max_secret_age: int | None = None  # seconds since a value was sealed with fresh content
    key_rotation_period: int | None = None  # seconds an active key may live
    require_signature: bool = False  # every sealed document signed by an allowed signer (check, unseal)
    max_lifetime: int | None = None  # seconds a new value lives: its default expiry, and the longest allowed
    warn_before: int = WARN_BEFORE  # seconds before an expiry that check and status warn of it
    on_expiry: str = "refuse"  # what opening an expired value does: "refuse", or "warn" and open it


@dataclass(frozen=True)
class Environment:
    name: str
    paths: tuple[str, ...]
    policy: Policy = Policy()
    # Secrets the environment provides without sealing them (a cert-manager certificate, an
    # operator's credentials): (namespace, name). `check` resolves references to them by name only.
    external: tuple[tuple[str, str], ...] = ()

    def owns(self, rel_path: str) -> bool:
        return any(compile_glob(p).fullmatch(rel_path) for p in self.paths)


@dataclass(frozen=True)
class ReviewSettings:
    """`audit: {review: …}` of `.sealer.yaml`: what `sealer audit review` flags besides new actors
    and hosts. `hours`: the unseal hours as minutes after midnight, [start, end) in `timezone`
    (start > end spans midnight); None: no hours, nothing is outside them. A burst is `failures`
    failed unseals of one environment within `within` seconds."""

    hours: tuple[int, int] | None = None
    timezone: str = "UTC"
    burst_failures: int = 5
    burst_within: int = 600


@dataclass
class Config:
    root: Path
    environments: dict[str, Environment]
    rules: list[ValueRule] = field(default_factory=list)
    scan_exclude: tuple[str, ...] = ()  # globs `sealer scan` skips (test fixtures holding published keys)
    review: ReviewSettings = ReviewSettings()

    @classmethod
    def load(cls, root: Path, *, text: str | None = None) -> Config:
        """`.sealer.yaml` of `root`, or its `text` as read elsewhere (a git commit's blob)."""
        path = root / CONFIG_NAME
        data = load_yaml_mapping(path, text=text)
        envs_raw = data.get("environments") or {}
        if not isinstance(envs_raw, dict):
            raise ConfigError("'environments' must be a mapping of name to settings", file=str(path))
        envs: dict[str, Environment] = {}
        for name, spec in envs_raw.items():
            name = str(name)
            spec = spec or {}
            paths = spec.get("paths", []) if isinstance(spec, dict) else None
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise ConfigError(f"environment {name!r}: 'paths' must be a list of globs", file=str(path))
            envs[name] = Environment(name, tuple(paths), _policy(spec, name, path), _external(spec, name, path))
        rules = []
        for i, r in enumerate(data.get("rules") or []):
            if not isinstance(r, dict) or not isinstance(r.get("files"), str):
                raise ConfigError(f"rules[{i}] needs a 'files' glob", file=str(path))
            rule = ValueRule(r["files"], r.get("encrypted_regex"), r.get("unencrypted_regex"))
            for rx in (rule.encrypted_regex, rule.unencrypted_regex):
                try:
                    if rx is not None:
                        re.compile(rx)
                except (re.error, TypeError):
                    raise ConfigError(f"rules[{i}]: bad regular expression {rx!r}", file=str(path)) from None
            rules.append(rule)
        scan = data.get("scan") or {}
        exclude = scan.get("exclude", []) if isinstance(scan, dict) else None
        if not isinstance(exclude, list) or not all(isinstance(g, str) for g in exclude):
            raise ConfigError("'scan.exclude' must be a list of globs", file=str(path))
        return cls(root, envs, rules, tuple(exclude), _review(data.get("audit"), path))

    def env_for(self, rel_path: str) -> Environment | None:
        owners = [e for e in self.environments.values() if e.owns(rel_path)]
        if len(owners) > 1:
            names = ", ".join(e.name for e in owners)
            raise ConfigError(
                f"{rel_path} matches the paths of several environments ({names})",
                file=str(self.root / CONFIG_NAME),
            )
        return owners[0] if owners else None

    def resolve_env(self, rel_path: str | None, requested: str | None) -> str:
        """The environment a file belongs to; a requested one must agree with the path rules."""
        owner = self.env_for(rel_path) if rel_path is not None else None
        if requested is not None:
            if requested not in self.environments:
                raise UsageError(
                    f"unknown environment {requested!r}",
                    hint=f"known: {', '.join(self.environments) or 'none'}; add one with sealer init --env",
                )
            if owner is not None and owner.name != requested:
                raise EnvironmentMismatch(
                    f"belongs to environment {owner.name!r} by its path rule, not {requested!r}",
                    file=rel_path,
                    hint=f"drop --env, or use --env {owner.name}",
                )
            return requested
        if owner is None:
            raise UsageError(
                "no environment's path rule covers this file",
                file=rel_path or "-",
                hint="pass --env, or add the path to an environment in .sealer.yaml",
            )
        return owner.name

    def selector(self, rel_path: str | None) -> Callable[[str], bool] | None:
        """The value rule covering a file as the document layer's `Selector` (`None`: no rule
        covers it, and `sealer._document.selects` applies its default)."""
        rule = self.rule_for(rel_path)
        return rule.selects if rule is not None else None

    def rule_for(self, rel_path: str | None) -> ValueRule | None:
        if rel_path is None:
            return None
        for r in self.rules:
            if compile_glob(r.files).fullmatch(rel_path):
                return r
        return None

    def relpath(self, path: Path, *, env: str | None = None) -> str | None:
        """Repo-relative POSIX path, for the path rules. A file outside the repository has none: that
        is allowed only when the environment is named explicitly. A path that *looks* inside the
        repository but leads outside it (a symlink, `..`) is refused: writes must not escape."""
        root = self.root.resolve()
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            import os

            lexical = Path(os.path.normpath(os.path.abspath(path)))
            if lexical.is_relative_to(root) or lexical.is_relative_to(self.root.absolute()):
                raise UsageError(
                    "leads outside the sealer repository through a symbolic link",
                    file=str(path),
                    hint="sealer does not follow links out of the repository; use the real path",
                ) from None
            if env is not None:
                return None
            raise UsageError(
                "is outside the sealer repository, so no path rule gives its environment",
                file=str(path),
                hint=f"pass --env, or move it under {self.root}",
            ) from None

    def registry(self, env: str) -> Registry:
        from ._registry import Registry

        if env not in self.environments:
            raise UsageError(f"unknown environment {env!r}", hint=f"known: {', '.join(self.environments) or 'none'}")
        return Registry.load(self.root, env)


_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _external(spec: object, env: str, path: Path) -> tuple[tuple[str, str], ...]:
    """`external:`: the plain Secrets an environment provides, as `namespace/name` entries."""
    raw = spec.get("external") if isinstance(spec, dict) else None
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"environment {env!r}: 'external' must be a list of NAMESPACE/NAME entries", file=str(path))
    out: list[tuple[str, str]] = []
    for i, entry in enumerate(raw):
        parts = entry.split("/") if isinstance(entry, str) else []
        if len(parts) != 2 or not all(_DNS_NAME.fullmatch(p) for p in parts):
            raise ConfigError(
                f"environment {env!r}: external[{i}] {entry!r} is not NAMESPACE/NAME"
                " (lowercase letters, digits, '-' and '.', e.g. cert-manager/wildcard-tls)",
                file=str(path),
            )
        out.append((parts[0], parts[1]))
    return tuple(out)


def _policy(spec: object, env: str, path: Path) -> Policy:
    raw = spec.get("policy") if isinstance(spec, dict) else None
    if raw is None:
        return Policy()
    if not isinstance(raw, dict):
        raise ConfigError(f"environment {env!r}: 'policy' must be a mapping", file=str(path))
    values: dict[str, int | None] = {}
    for key in ("max_secret_age", "key_rotation_period", "max_lifetime", "warn_before"):
        if raw.get(key) is None:
            values[key] = None
            continue
        try:
            values[key] = parse_duration(raw[key])
        except ValueError as e:
            raise ConfigError(f"environment {env!r}: policy.{key}: {e}", file=str(path)) from None
        if values[key] == 0 and key == "max_lifetime":
            raise ConfigError(f"environment {env!r}: policy.max_lifetime must be longer than 0s", file=str(path))
    required = raw.get("require_signature", False)
    if not isinstance(required, bool):
        raise ConfigError(f"environment {env!r}: policy.require_signature must be true or false", file=str(path))
    on_expiry = raw.get("on_expiry", "refuse")
    if on_expiry not in ON_EXPIRY:
        raise ConfigError(
            f"environment {env!r}: policy.on_expiry must be refuse or warn, not {on_expiry!r}", file=str(path)
        )
    unknown = set(raw) - {*values, "require_signature", "on_expiry"}
    if unknown:
        raise ConfigError(f"environment {env!r}: unknown policy setting {sorted(unknown)[0]!r}", file=str(path))
    warn_before = values["warn_before"]
    return Policy(
        values["max_secret_age"],
        values["key_rotation_period"],
        required,
        max_lifetime=values["max_lifetime"],
        warn_before=WARN_BEFORE if warn_before is None else warn_before,
        on_expiry=on_expiry,
    )


_HOURS = r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]|24):([0-5][0-9])"  # compiled on first use
_REVIEW_KEYS = ("hours", "timezone", "burst")


def _review(spec: object, path: Path) -> ReviewSettings:
    """`audit.review`, checked whole: one line naming the setting that is wrong."""
    if spec is None:
        return ReviewSettings()
    if not isinstance(spec, dict) or set(spec) - {"review"}:
        raise ConfigError("'audit' must be a mapping with one setting, 'review'", file=str(path))
    raw = spec.get("review") or {}
    if not isinstance(raw, dict):
        raise ConfigError("'audit.review' must be a mapping", file=str(path))
    unknown = sorted(set(raw) - set(_REVIEW_KEYS))
    if unknown:
        raise ConfigError(
            f"audit.review: unknown setting {unknown[0]!r} (known: {', '.join(_REVIEW_KEYS)})", file=str(path)
        )
    hours = None
    if raw.get("hours") is not None:
        m = re.fullmatch(_HOURS, str(raw["hours"]).strip())
        start = int(m.group(1)) * 60 + int(m.group(2)) if m else 0
        end = int(m.group(3)) * 60 + int(m.group(4)) if m else 0
        if m is None or end > 24 * 60 or start == end:
            raise ConfigError(
                f'audit.review.hours: {raw["hours"]!r} is not a span of hours like "07:00-19:00"', file=str(path)
            )
        hours = (start, end % (24 * 60))
    zone = str(raw.get("timezone") or "UTC").strip()
    if zone != "UTC":
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(zone)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            raise ConfigError(
                f"audit.review.timezone: {zone!r} is not a time zone (e.g. UTC, Europe/Berlin)", file=str(path)
            ) from None
    burst = raw.get("burst") or {}
    if not isinstance(burst, dict) or set(burst) - {"failures", "within"}:
        raise ConfigError("audit.review.burst must be a mapping of 'failures' and 'within'", file=str(path))
    failures = burst.get("failures", ReviewSettings.burst_failures)
    if type(failures) is not int or failures < 1:
        raise ConfigError(f"audit.review.burst.failures: {failures!r} is not a count of 1 or more", file=str(path))
    within = ReviewSettings.burst_within
    if burst.get("within") is not None:
        try:
            within = parse_duration(burst["within"])
        except ValueError as e:
            raise ConfigError(f"audit.review.burst.within: {e}", file=str(path)) from None
        if within <= 0:
            raise ConfigError("audit.review.burst.within: must be more than zero", file=str(path))
    return ReviewSettings(hours, zone, failures, within)


def find_root(start: Path) -> Path | None:
    """The sealer repository holding `start`: the directory of its `.sealer.yaml`.

    A repository has exactly one, at its root. A second `.sealer.yaml` above or below is refused
    at every door: one committed under `deploy/` would otherwise replace the environments' rules
    (signature policy, retired keys) for whoever names a file below it."""
    p = start.resolve()
    if p.is_file() or not p.exists():
        p = p.parent
    found = [d for d in (p, *p.parents) if (d / CONFIG_NAME).is_file()]
    if len(found) > 1:
        raise ConfigError(
            f"a second {CONFIG_NAME} inside the sealer repository at {found[-1]}",
            file=str(found[0] / CONFIG_NAME),
            hint="a repository has one configuration, at its root: remove the nested one",
        )
    return found[0] if found else None


def load_config(start: Path | None = None) -> Config:
    root = find_root(start or Path.cwd())
    if root is None:
        raise ConfigError(
            f"no {CONFIG_NAME} found here or in any parent directory",
            hint="run: sealer init --env dev --env prod",
        )
    return Config.load(root)


def write_config(root: Path, envs: Sequence[str]) -> None:
    for e in envs:
        if not _ENV_NAME.fullmatch(e):
            raise UsageError(f"bad environment name {e!r}", hint="use lowercase letters, digits, '-' and '_'")
    lines = [
        "# sealer configuration: which environment owns which paths, and which values get sealed.",
        "version: 1",
        "environments:",
    ]
    for e in envs:
        lines += [f"  {e}:", "    paths:", f'      - "deploy/{e}/**"']
    lines += [
        "# In a Kubernetes Secret every data and stringData value is sealed. Other manifests (apiVersion and",
        "# kind: a Deployment, a ConfigMap): nothing, unless a rule selects values. Any other document",
        "# (Helm values, app config): every scalar, unless a rule narrows it:",
        "# rules:",
        '#   - files: "deploy/**/values*.yaml"',
        "#     encrypted_regex: '(password|token|secret|key)$'",
        "",
    ]
    atomic_write(root / CONFIG_NAME, "\n".join(lines).encode())


def load_yaml_mapping(path: Path, *, text: str | None = None) -> dict[str, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    text = read_text(path) if text is None else text
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"malformed YAML{where}", file=str(path), hint="fix the file or restore it from git"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", file=str(path))
    return data
