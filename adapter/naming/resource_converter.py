"""Label ↔ Kubernetes resource association (`resources.overrides` and `resources.template`).

Port of the Go adapter's `pkg/naming/resource_converter.go` and `lbl_res.go`:
- label → resource: an override, else the label template turned into an anchored regex
  (`<<.Resource>>` → `(?P<resource>.+?)`), resolved through the REST mapper; labels that name
  no known resource are skipped.
- resource → label: an override, else the template executed with the singular resource and
  the group with `.` and `-` replaced by `_`.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from adapter.golang.quote import go_quote
from adapter.golang.regexp import GoRegexp, GoRegexpError, compile_go_regexp
from adapter.gotemplate.template import (
    FieldKind,
    GoTemplate,
    TemplateError,
    TemplateExecError,
    compile_template,
)
from adapter.kube.rest_mapper import (
    NAMESPACES,
    NODES,
    PERSISTENT_VOLUMES,
    GroupResource,
    NoResourceMatchError,
    RESTMapper,
)
from adapter.naming.errors import NamingError

__all__ = [
    "CLUSTER_SCOPED_BY_RULE",
    "RESOURCE_LABEL_FIELDS",
    "ResourceConverter",
    "UnresolvedOverride",
    "new_resource_converter",
]

RESOURCE_LABEL_FIELDS: Mapping[str, FieldKind] = {
    "Group": FieldKind.STRING,
    "Resource": FieldKind.STRING,
}

# The Go adapter registers metrics on these resources as cluster-scoped and every other
# resource as namespaced.
CLUSTER_SCOPED_BY_RULE = frozenset({NAMESPACES, NODES, PERSISTENT_VOLUMES})

_GROUP_SANITIZER = str.maketrans({".": "_", "-": "_"})


@dataclass(frozen=True, slots=True)
class UnresolvedOverride:
    """An override whose resource the REST mapper does not know (kept as written)."""

    label: str
    resource: GroupResource
    reason: str


class ResourceConverter:
    """Converts between Prometheus label names and group-resources for one rule."""

    def __init__(
        self,
        mapper: RESTMapper,
        overrides: Mapping[str, GroupResource],
        template: GoTemplate | None = None,
        label_regex: GoRegexp | None = None,
    ) -> None:
        self.mapper = mapper
        self.template = template
        self.label_regex = label_regex
        self.overrides = dict(overrides)
        self._label_to_resource: dict[str, GroupResource] = dict(overrides)
        # Labels that named no resource, with the mapper generation that said so.
        self._misses: dict[str, int] = {}
        self._resource_to_label: dict[GroupResource, str] = {
            resource: label for label, resource in overrides.items()
        }

    def resource_for_label(self, label: str) -> GroupResource | None:
        """The resource a label names, or None. A relist asks this for every label of every
        series, so results are cached; misses only until the REST mapper learns more."""
        found = self._label_to_resource.get(label)
        if found is not None:
            return found
        if self._misses.get(label) == self.mapper.generation:
            return None
        resource = self._resolve_label(label)
        if resource is None:
            self._misses[label] = self.mapper.generation
        else:
            self._label_to_resource[label] = resource
        return resource

    def _resolve_label(self, label: str) -> GroupResource | None:
        if self.label_regex is None:
            return None
        groups = self.label_regex.find_submatch(label)
        if groups is None:
            return None
        names = self.label_regex.subexp_names()
        group = groups[names.index("group")] if "group" in names else ""
        resource = groups[names.index("resource")] or ""
        try:
            return self.mapper.resource_for(GroupResource(group or "", resource)).group_resource
        except NoResourceMatchError:
            return None

    def resources_for_series(self, labels: Iterable[str]) -> list[GroupResource]:
        """The distinct resources a series' labels name, in label order."""
        found: dict[GroupResource, None] = {}
        for label in labels:
            resource = self.resource_for_label(label)
            if resource is not None:
                found[resource] = None
        return list(found)

    def label_for_resource(self, resource: GroupResource) -> str:
        label = self._resource_to_label.get(resource)
        if label is None:
            try:
                label = self._make_label(resource)
            except NamingError as exc:
                raise NamingError(
                    f"unable to convert resource {resource} into label: {exc}"
                ) from None
            self._resource_to_label[resource] = label
        return label

    def _make_label(self, resource: GroupResource) -> str:
        if self.template is None:
            raise NamingError("no generic resource label form specified for this metric")
        try:
            singular = self.mapper.resource_for(GroupResource("", resource.resource)).singular
        except NoResourceMatchError as exc:
            raise NamingError(f"unable to singularize resource {resource}: {exc}") from None
        try:
            label = self.template.render(
                {"Group": resource.group.translate(_GROUP_SANITIZER), "Resource": singular}
            )
        except TemplateExecError as exc:
            raise NamingError(str(exc)) from None
        if not label:
            raise NamingError("empty label produced by label template")
        return label

    def is_namespaced(self, resource: GroupResource) -> bool:
        """Whether metrics on `resource` are served under `/namespaces/{ns}/`.

        The Go adapter treats every resource but namespaces, nodes and persistentvolumes as
        namespaced, so metrics on cluster-scoped resources such as storageclasses or
        cluster-scoped custom resources can never be fetched. We use the resource's real
        scope when the REST mapper knows it, and the Go rule otherwise.
        """
        if resource in CLUSTER_SCOPED_BY_RULE:
            return False
        try:
            return self.mapper.resource_for(resource).namespaced
        except NoResourceMatchError:
            return True


def _label_regex(template: GoTemplate) -> GoRegexp:
    """Go's `newLabelGroupResExtractor`: the template rendered with capture groups."""
    try:
        rendered = template.render({"Group": "(?P<group>.+?)", "Resource": "(?P<resource>.+?)"})
    except TemplateExecError as exc:
        raise NamingError(f"unable to convert label template to matcher: {exc}") from None
    if not rendered:
        raise NamingError("unable to convert label template to matcher: empty template")
    try:
        regex = compile_go_regexp(f"^{rendered}$")
    except GoRegexpError as exc:
        raise NamingError(f"unable to convert label template to matcher: {exc}") from None
    if "resource" not in regex.subexp_names():
        raise NamingError("must include at least `<<.Resource>>` in the label template")
    return regex


def new_resource_converter(
    mapper: RESTMapper, template_text: str, overrides: Mapping[str, GroupResource]
) -> tuple[ResourceConverter, list[UnresolvedOverride]]:
    """Compile a rule's `resources`. Overrides are normalised through the mapper (`pod` →
    `pods`, `deployment` in `apps` → `deployments.apps`); those it does not know are kept as
    written and returned, for the caller to reject or warn about."""
    template = None
    label_regex = None
    if template_text:
        try:
            template = compile_template(template_text, RESOURCE_LABEL_FIELDS, name="resource-label")
        except TemplateError as exc:
            raise NamingError(
                f"unable to parse label template {go_quote(template_text)}: {exc}"
            ) from None
        label_regex = _label_regex(template)

    normalised: dict[str, GroupResource] = {}
    unresolved: list[UnresolvedOverride] = []
    for label, written in overrides.items():
        try:
            normalised[label] = mapper.resource_for(written).group_resource
        except NoResourceMatchError as exc:
            normalised[label] = GroupResource(written.group, written.resource.lower())
            unresolved.append(UnresolvedOverride(label, normalised[label], str(exc)))
    return ResourceConverter(mapper, normalised, template, label_regex), unresolved
