"""Local Kubernetes control plane for development and tests (etcd, kube-apiserver,
kube-controller-manager built at pinned versions), in the spirit of controller-runtime's envtest.

    from modelreg.devcluster import DevCluster

    info = DevCluster().up()          # reuses a running cluster
    print(info.kubeconfig)
"""

from __future__ import annotations

from modelreg.devcluster.binaries import Binaries, Versions, ensure_binaries, pinned_versions
from modelreg.devcluster.cluster import ClusterInfo, ClusterStatus, DevCluster, default_state_dir
from modelreg.devcluster.components import APISERVER, COMPONENTS, CONTROLLER_MANAGER, ETCD
from modelreg.devcluster.errors import DevClusterError
from modelreg.devcluster.kubeconfig import CONTEXT_NAME

__all__ = [
    "APISERVER",
    "COMPONENTS",
    "CONTEXT_NAME",
    "CONTROLLER_MANAGER",
    "ETCD",
    "Binaries",
    "ClusterInfo",
    "ClusterStatus",
    "DevCluster",
    "DevClusterError",
    "Versions",
    "default_state_dir",
    "ensure_binaries",
    "pinned_versions",
]
