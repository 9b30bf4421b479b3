"""References from workloads to Secret keys: resolved before deploy (`sealer check`) and mapped
(`sealer refs`). Needs no private key: a sealed Secret's names and keys are readable.

`extract` reads what one document provides (a Secret and its keys) or consumes (a pod spec's
references); `sources` gives the documents an environment deploys (its files, or their
`kubectl kustomize` render); `resolve` joins them into the map (consumers per key, unused keys,
missing references); `output` prints it as text or a mermaid graph.
"""

from __future__ import annotations

from .extract import DEFAULT_NAMESPACE, POD_SPEC, KeyInfo, Provided, Ref, provided, references
from .output import mermaid, quote, text_lines
from .resolve import EnvRefs, KeyUse, Missing, SecretUse, env_refs, from_sources, refs, resolve
from .sources import EnvSources, Failure, Sourced, env_sources

__all__ = [
    "DEFAULT_NAMESPACE",
    "POD_SPEC",
    "EnvRefs",
    "EnvSources",
    "Failure",
    "KeyInfo",
    "KeyUse",
    "Missing",
    "Provided",
    "Ref",
    "SecretUse",
    "Sourced",
    "env_refs",
    "env_sources",
    "from_sources",
    "mermaid",
    "provided",
    "quote",
    "references",
    "refs",
    "resolve",
    "text_lines",
]
