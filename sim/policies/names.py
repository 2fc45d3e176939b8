"""How Kubernetes names what a controller creates: pod-template hashes and pod names.

Shared by the policies (an Argo analysis argument ``valueFrom: podTemplateHashValue`` is
the ReplicaSet's hash) and the world's exporters (pods are named after them), so both
agree on the names without the policies knowing the world. Values are deterministic
stand-ins in Kubernetes' alphabet, not Kubernetes' own hash of a pod template.
"""

from __future__ import annotations

import hashlib

#: The characters Kubernetes uses for generated name suffixes and pod-template hashes
#: (k8s.io/apimachinery pkg/util/rand ``alphanums``: no vowels, no 0 1 3).
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def k8s_token(seed: str, length: int) -> str:
    """A deterministic string of Kubernetes' suffix alphabet derived from ``seed``."""
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    out = []
    for _ in range(length):
        digest, r = divmod(digest, len(K8S_ALPHABET))
        out.append(K8S_ALPHABET[r])
    return "".join(out)


def pod_template_hash(workload: str) -> str:
    """A deterministic pod-template hash for a workload (10 characters, as Kubernetes')."""
    return k8s_token("template:" + workload, 10)


def rollout_hashes(rollout: str) -> tuple[str, str]:
    """(stable, canary) pod-template hashes of an Argo Rollout's two ReplicaSets."""
    return pod_template_hash(f"{rollout}-stable"), pod_template_hash(f"{rollout}-canary")


__all__ = ["K8S_ALPHABET", "k8s_token", "pod_template_hash", "rollout_hashes"]
