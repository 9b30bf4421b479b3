"""Scopes and places: what a sealed value is bound to. A SealedSecret's scope (strict,
namespace-wide, cluster-wide, chosen by two annotations) decides the RSA-OAEP label, and the label
is the only thing that ties a value to a name and namespace.

Why a module of its own: sealing writes the label and the annotations, unsealing reads them back,
and the crypto names places in its diagnoses; all three must agree on one rule, kept here, along
with the mapping to sealer's own Secret scopes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Scope = Literal["strict", "namespace-wide", "cluster-wide"]
SCOPES: tuple[Scope, ...] = ("strict", "namespace-wide", "cluster-wide")

ANNOTATION_NAMESPACE_WIDE = "sealedsecrets.bitnami.com/namespace-wide"
ANNOTATION_CLUSTER_WIDE = "sealedsecrets.bitnami.com/cluster-wide"

# sealer's Secret scopes and theirs bind the same things: namespace+name, namespace, nothing.
FROM_SEALER_SCOPE: dict[str, Scope] = {"strict": "strict", "namespace": "namespace-wide", "env": "cluster-wide"}
TO_SEALER_SCOPE: dict[Scope, str] = {v: k for k, v in FROM_SEALER_SCOPE.items()}


def encryption_label(namespace: str, name: str, scope: Scope) -> bytes:
    """The RSA-OAEP label for a place: the one thing that binds a value to it."""
    if scope == "cluster-wide":
        return b""
    if scope == "namespace-wide":
        return namespace.encode()
    return f"{namespace}/{name}".encode()


@dataclass(frozen=True)
class Place:
    """Where a SealedSecret lives, as far as its label is concerned."""

    namespace: str
    name: str
    scope: Scope

    @property
    def label(self) -> bytes:
        return encryption_label(self.namespace, self.name, self.scope)

    def describe(self) -> str:
        if self.scope == "cluster-wide":
            return "any namespace (cluster-wide)"
        if self.scope == "namespace-wide":
            return f"namespace {self.namespace!r} (namespace-wide)"
        return f"name {self.name!r} in namespace {self.namespace!r} (strict)"


def place_from_label(label: bytes) -> Place:
    """The place a label names (the inverse of `encryption_label`, scope included)."""
    if not label:
        return Place("", "", "cluster-wide")
    text = label.decode("utf-8", "replace")
    if "/" in text:
        ns, name = text.split("/", 1)
        return Place(ns, name, "strict")
    return Place(text, "", "namespace-wide")


def scope_of(annotations: Mapping[str, Any] | None) -> Scope:
    """The scope the annotations select; cluster-wide wins when both are set, as in the controller."""
    ann = annotations or {}
    if ann.get(ANNOTATION_CLUSTER_WIDE) == "true":
        return "cluster-wide"
    if ann.get(ANNOTATION_NAMESPACE_WIDE) == "true":
        return "namespace-wide"
    return "strict"


def scope_annotations(annotations: Mapping[str, str], scope: Scope) -> dict[str, str]:
    """`annotations` with the scope annotations replaced by those that select `scope`."""
    out = {k: v for k, v in annotations.items() if k not in (ANNOTATION_NAMESPACE_WIDE, ANNOTATION_CLUSTER_WIDE)}
    if scope == "namespace-wide":
        out[ANNOTATION_NAMESPACE_WIDE] = "true"
    elif scope == "cluster-wide":
        out[ANNOTATION_CLUSTER_WIDE] = "true"
    return out
