"""Label ↔ resource association (the Go adapter's resource_converter.go and lbl_res.go)."""

import pytest

from adapter.kube.rest_mapper import (
    BUILTIN_RESOURCES,
    GroupResource,
    ResourceInfo,
    StaticRESTMapper,
)
from adapter.naming.errors import NamingError
from adapter.naming.resource_converter import ResourceConverter, new_resource_converter

MAPPER = StaticRESTMapper(BUILTIN_RESOURCES)
PODS = GroupResource("", "pods")
NAMESPACES = GroupResource("", "namespaces")


def converter(template: str = "", **overrides: GroupResource) -> ResourceConverter:
    built, unresolved = new_resource_converter(MAPPER, template, overrides)
    assert unresolved == []
    return built


@pytest.mark.parametrize(
    ("template", "resource", "label"),
    [
        pytest.param("<<.Resource>>", PODS, "pod", id="singular"),
        pytest.param("kube_<<.Resource>>", PODS, "kube_pod", id="prefix"),
        pytest.param(
            "<<.Group>>_<<.Resource>>",
            GroupResource("apps", "deployments"),
            "apps_deployment",
            id="group",
        ),
        pytest.param(
            "<<.Group>>_<<.Resource>>",
            GroupResource("networking.k8s.io", "ingresses"),
            "networking_k8s_io_ingress",
            id="group-dots-sanitized",
        ),
        pytest.param("<<.Resource>>", GroupResource("", "namespaces"), "namespace", id="namespace"),
    ],
)
def test_label_for_resource_from_template(
    template: str, resource: GroupResource, label: str
) -> None:
    assert converter(template).label_for_resource(resource) == label


@pytest.mark.parametrize(
    ("template", "label", "resource"),
    [
        pytest.param("<<.Resource>>", "pod", PODS, id="singular-label"),
        pytest.param("<<.Resource>>", "pods", PODS, id="plural-label"),
        pytest.param(
            "<<.Resource>>", "job", GroupResource("batch", "jobs"), id="job-label-surprise"
        ),
        pytest.param("<<.Resource>>", "service", GroupResource("", "services"), id="service"),
        pytest.param("<<.Resource>>", "instance", None, id="not-a-resource"),
        pytest.param("kube_<<.Resource>>", "kube_pod", PODS, id="prefix"),
        pytest.param("kube_<<.Resource>>", "pod", None, id="prefix-required"),
        pytest.param(
            "kube_<<.Group>>_<<.Resource>>",
            "kube_apps_deployment",
            GroupResource("apps", "deployments"),
            id="group",
        ),
        # The lazy group stops at the first underscore, so dotted groups do not round-trip (as in Go).
        pytest.param(
            "kube_<<.Group>>_<<.Resource>>",
            "kube_networking_k8s_io_ingress",
            None,
            id="dotted-group",
        ),
    ],
)
def test_resource_for_label_from_template(
    template: str, label: str, resource: GroupResource | None
) -> None:
    assert converter(template).resource_for_label(label) == resource


def test_overrides_are_normalised_and_win() -> None:
    c = converter(
        "<<.Resource>>",
        kubernetes_pod_name=GroupResource("", "pod"),
        ns=GroupResource("", "Namespace"),
        deploy=GroupResource("apps", "deployment"),
    )
    assert c.resource_for_label("kubernetes_pod_name") == PODS
    assert c.resource_for_label("deploy") == GroupResource("apps", "deployments")
    assert c.label_for_resource(PODS) == "kubernetes_pod_name"
    assert c.label_for_resource(NAMESPACES) == "ns"
    # Other resources still go through the template.
    assert c.label_for_resource(GroupResource("", "services")) == "service"


def test_resources_for_series_dedups_in_label_order() -> None:
    c = converter("<<.Resource>>", kubernetes_namespace=GroupResource("", "namespace"))
    labels = ["instance", "pod", "kubernetes_namespace", "namespace", "job", "pod"]
    assert c.resources_for_series(labels) == [PODS, NAMESPACES, GroupResource("batch", "jobs")]


def test_overrides_only_map_nothing_else() -> None:
    c = converter(pod=GroupResource("", "pod"))
    assert c.resources_for_series(["pod", "namespace", "service"]) == [PODS]
    with pytest.raises(NamingError) as excinfo:
        c.label_for_resource(NAMESPACES)
    assert str(excinfo.value) == (
        "unable to convert resource namespaces into label: "
        "no generic resource label form specified for this metric"
    )


@pytest.mark.parametrize(
    ("resource", "namespaced"),
    [
        pytest.param(PODS, True, id="pods"),
        pytest.param(NAMESPACES, False, id="namespaces"),
        pytest.param(GroupResource("", "nodes"), False, id="nodes"),
        pytest.param(GroupResource("", "persistentvolumes"), False, id="persistentvolumes"),
        # Fixed: the Go adapter advertises every other resource as namespaced.
        pytest.param(
            GroupResource("storage.k8s.io", "storageclasses"), False, id="cluster-scoped-fixed"
        ),
        pytest.param(GroupResource("cheese.io", "brands"), True, id="unknown-as-go"),
    ],
)
def test_is_namespaced(resource: GroupResource, namespaced: bool) -> None:
    assert converter("<<.Resource>>").is_namespaced(resource) is namespaced


def test_unknown_override_is_returned_for_the_caller() -> None:
    built, unresolved = new_resource_converter(
        MAPPER, "", {"brand": GroupResource("cheese.io", "Brand")}
    )
    assert [(u.label, u.resource) for u in unresolved] == [
        ("brand", GroupResource("cheese.io", "brand"))
    ]
    assert built.label_for_resource(GroupResource("cheese.io", "brand")) == "brand"


def test_custom_resource_from_a_live_mapper() -> None:
    brands = ResourceInfo("cheese.io", "v1", "brands", "brand", "Brand", namespaced=False)
    mapper = StaticRESTMapper([*BUILTIN_RESOURCES, brands])
    built, unresolved = new_resource_converter(
        mapper, "", {"brand": GroupResource("cheese.io", "brand")}
    )
    assert unresolved == []
    assert built.resource_for_label("brand") == GroupResource("cheese.io", "brands")
    assert not built.is_namespaced(GroupResource("cheese.io", "brands"))


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param(
            "<<.Group>>",
            "must include at least `<<.Resource>>` in the label template",
            id="no-resource",
        ),
        pytest.param("<<.Resource", "unable to parse label template", id="syntax"),
        pytest.param(
            # Go's parser accepts it; newLabelGroupResExtractor executes the template at
            # start-up and fails.
            "<<.Kind>>",
            "unable to convert label template to matcher: template: resource-label:1:2: executing"
            ' "resource-label" at <.Kind>: can\'t evaluate field Kind in type schema.GroupResource',
            id="unknown-field",
        ),
        pytest.param(
            "<<.Resource>>(",
            "unable to convert label template to matcher: error parsing regexp",
            id="bad-regex",
        ),
    ],
)
def test_template_errors(template: str, message: str) -> None:
    with pytest.raises(NamingError, match=message.replace("(", r"\(")):
        new_resource_converter(MAPPER, template, {})


def test_template_mistake_not_reached_at_start_up_fails_that_label_only() -> None:
    # Go executes the template at start-up with the capture groups only; the rest is
    # executed per resource, and fails only where it reaches the mistake.
    template = '<<.Resource>><<if eq .Group "apps">><<.Kind>><<end>>'
    built, _ = new_resource_converter(MAPPER, template, {})
    assert built.template is not None
    assert len(built.template.deferred_errors) == 1
    assert built.label_for_resource(GroupResource("", "pods")) == "pod"
    with pytest.raises(NamingError) as info:
        built.label_for_resource(GroupResource("apps", "deployments"))
    assert str(info.value) == (
        "unable to convert resource deployments.apps into label: template: resource-label:1:"
        '38: executing "resource-label" at <.Kind>: can\'t evaluate field Kind in type'
        " schema.GroupResource"
    )
