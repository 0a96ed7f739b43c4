"""Resource names, kinds and scopes: what the Go adapter gets from a client-go RESTMapper.

`RESTMapper` is the small interface the rule engine needs. `StaticRESTMapper` answers from a
built-in table of core and common resources; it is the no-cluster fallback, and a later
implementation fills the same interface from live API discovery.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "BUILTIN_RESOURCES",
    "NAMESPACES",
    "NODES",
    "PERSISTENT_VOLUMES",
    "PODS",
    "GroupResource",
    "NoResourceMatchError",
    "RESTMapper",
    "ResourceInfo",
    "StaticRESTMapper",
]


@dataclass(frozen=True, slots=True, order=True)
class GroupResource:
    """Kubernetes `schema.GroupResource`; the empty group is the core ("legacy") group."""

    group: str
    resource: str

    def __str__(self) -> str:
        # Go's GroupResource.String(): "pods", "deployments.apps".
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @classmethod
    def parse(cls, text: str) -> "GroupResource":
        """Go's `schema.ParseGroupResource`: the part before the first dot is the resource."""
        resource, _, group = text.partition(".")
        return cls(group=group, resource=resource)


NAMESPACES = GroupResource("", "namespaces")
NODES = GroupResource("", "nodes")
PERSISTENT_VOLUMES = GroupResource("", "persistentvolumes")
PODS = GroupResource("", "pods")


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """One API resource as discovery describes it, at its preferred version."""

    group: str
    version: str
    resource: str  # plural, lower case
    singular: str
    kind: str
    namespaced: bool

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.group, self.resource)

    @property
    def api_version(self) -> str:
        """`apiVersion` of a reference to such an object, as the Go adapter writes it.

        The Go adapter joins group and version with a slash even for the core group, so core
        objects are described with `/v1`; clients (the HPA) accept it, and we keep it identical.
        """
        return f"{self.group}/{self.version}"


class NoResourceMatchError(LookupError):
    """No resource matches a partial group-resource (message as client-go's)."""

    def __init__(self, partial: GroupResource) -> None:
        self.partial = partial
        super().__init__(f"no matches for {partial.group}/, Resource={partial.resource}")


class RESTMapper(Protocol):
    # Changes whenever the set of known resources may have changed, so that callers can
    # drop what they cached about lookups that missed.
    generation: int

    def resource_for(self, partial: GroupResource) -> ResourceInfo:
        """Resolve a partial group-resource (singular or plural, any case; empty group = any
        group, in priority order) to the resource. Raises NoResourceMatchError."""
        ...

    def known_resources(self) -> Iterable[ResourceInfo]:
        """Every resource the mapper knows, in priority order."""
        ...


class StaticRESTMapper:
    """A RESTMapper over a fixed list of resources, earlier entries winning ambiguities
    (as client-go's PriorityRESTMapper prefers the core group, then `apps`, ...)."""

    generation = 0

    def __init__(self, resources: Iterable[ResourceInfo]) -> None:
        self._resources = tuple(resources)
        self._by_name: dict[str, list[ResourceInfo]] = {}
        for info in self._resources:
            for name in {info.resource, info.singular}:
                self._by_name.setdefault(name, []).append(info)

    def resource_for(self, partial: GroupResource) -> ResourceInfo:
        for info in self._by_name.get(partial.resource.lower(), ()):
            if not partial.group or partial.group == info.group:
                return info
        raise NoResourceMatchError(partial)

    def known_resources(self) -> Iterable[ResourceInfo]:
        return self._resources


def _table(group: str, version: str, rows: str) -> list[ResourceInfo]:
    """Rows of `plural Kind [cluster]`; the singular is the lower-cased kind, as in discovery."""
    infos = []
    for row in rows.strip().splitlines():
        plural, kind, *scope = row.split()
        infos.append(ResourceInfo(group, version, plural, kind.lower(), kind, not scope))
    return infos


BUILTIN_RESOURCES: tuple[ResourceInfo, ...] = (
    *_table(
        "",
        "v1",
        """
        pods Pod
        services Service
        nodes Node cluster
        namespaces Namespace cluster
        persistentvolumes PersistentVolume cluster
        persistentvolumeclaims PersistentVolumeClaim
        endpoints Endpoints
        configmaps ConfigMap
        secrets Secret
        serviceaccounts ServiceAccount
        replicationcontrollers ReplicationController
        resourcequotas ResourceQuota
        limitranges LimitRange
        podtemplates PodTemplate
        events Event
        """,
    ),
    *_table(
        "apps",
        "v1",
        """
        deployments Deployment
        statefulsets StatefulSet
        replicasets ReplicaSet
        daemonsets DaemonSet
        controllerrevisions ControllerRevision
        """,
    ),
    *_table("batch", "v1", "jobs Job\ncronjobs CronJob"),
    *_table("autoscaling", "v2", "horizontalpodautoscalers HorizontalPodAutoscaler"),
    *_table(
        "networking.k8s.io",
        "v1",
        "ingresses Ingress\nnetworkpolicies NetworkPolicy\ningressclasses IngressClass cluster",
    ),
    *_table("policy", "v1", "poddisruptionbudgets PodDisruptionBudget"),
    *_table("discovery.k8s.io", "v1", "endpointslices EndpointSlice"),
    *_table("coordination.k8s.io", "v1", "leases Lease"),
    *_table(
        "storage.k8s.io",
        "v1",
        """
        storageclasses StorageClass cluster
        volumeattachments VolumeAttachment cluster
        csidrivers CSIDriver cluster
        csinodes CSINode cluster
        """,
    ),
    *_table(
        "rbac.authorization.k8s.io",
        "v1",
        """
        roles Role
        rolebindings RoleBinding
        clusterroles ClusterRole cluster
        clusterrolebindings ClusterRoleBinding cluster
        """,
    ),
    *_table("scheduling.k8s.io", "v1", "priorityclasses PriorityClass cluster"),
    *_table("node.k8s.io", "v1", "runtimeclasses RuntimeClass cluster"),
    *_table(
        "certificates.k8s.io", "v1", "certificatesigningrequests CertificateSigningRequest cluster"
    ),
    *_table(
        "apiextensions.k8s.io", "v1", "customresourcedefinitions CustomResourceDefinition cluster"
    ),
    *_table("events.k8s.io", "v1", "events Event"),
)
