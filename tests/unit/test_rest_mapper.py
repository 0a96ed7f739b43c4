import pytest

from adapter.kube.rest_mapper import (
    BUILTIN_RESOURCES,
    GroupResource,
    NoResourceMatchError,
    StaticRESTMapper,
)

MAPPER = StaticRESTMapper(BUILTIN_RESOURCES)


@pytest.mark.parametrize(
    ("partial", "expected"),
    [
        pytest.param(GroupResource("", "pods"), GroupResource("", "pods"), id="plural"),
        pytest.param(GroupResource("", "pod"), GroupResource("", "pods"), id="singular"),
        pytest.param(GroupResource("", "Pod"), GroupResource("", "pods"), id="case"),
        pytest.param(
            GroupResource("", "deployment"), GroupResource("apps", "deployments"), id="any-group"
        ),
        pytest.param(
            GroupResource("apps", "deployment"), GroupResource("apps", "deployments"), id="group"
        ),
        pytest.param(
            GroupResource("", "job"), GroupResource("batch", "jobs"), id="job-label-is-a-resource"
        ),
        pytest.param(
            GroupResource("", "events"), GroupResource("", "events"), id="core-group-first"
        ),
        pytest.param(
            GroupResource("events.k8s.io", "event"),
            GroupResource("events.k8s.io", "events"),
            id="explicit-group",
        ),
    ],
)
def test_resource_for(partial: GroupResource, expected: GroupResource) -> None:
    assert MAPPER.resource_for(partial).group_resource == expected


@pytest.mark.parametrize(
    "partial",
    [
        GroupResource("", "instance"),
        GroupResource("cheese.io", "brand"),
        GroupResource("batch", "pods"),
    ],
)
def test_no_match(partial: GroupResource) -> None:
    with pytest.raises(NoResourceMatchError, match=f"no matches for {partial.group}/, Resource="):
        MAPPER.resource_for(partial)


def test_resource_info() -> None:
    pods = MAPPER.resource_for(GroupResource("", "pods"))
    assert (pods.kind, pods.singular, pods.api_version, pods.namespaced) == (
        "Pod",
        "pod",
        "/v1",
        True,
    )
    deployments = MAPPER.resource_for(GroupResource("apps", "deployments"))
    assert deployments.api_version == "apps/v1"
    assert not MAPPER.resource_for(GroupResource("", "nodes")).namespaced


@pytest.mark.parametrize(
    ("text", "group_resource"),
    [
        ("pods", GroupResource("", "pods")),
        ("deployments.apps", GroupResource("apps", "deployments")),
        ("ingresses.networking.k8s.io", GroupResource("networking.k8s.io", "ingresses")),
    ],
)
def test_group_resource_parse_and_str(text: str, group_resource: GroupResource) -> None:
    assert GroupResource.parse(text) == group_resource
    assert str(group_resource) == text
