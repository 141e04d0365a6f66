"""moto_server with the fixes Terraform needs, for the Terraform tests.

Stock moto (5.2.x) imitates the AWS APIs closely enough for most of the region
stack, but a few calls are missing or answer differently from AWS, so an apply
fails or a re-plan shows changes that AWS would not show. Each patch below
restores one documented AWS behaviour; none of them makes a wrong
configuration pass. Run as ``python -m tests.terraform.moto_server -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

import json
import secrets
import string
import sys
from collections.abc import Callable
from typing import Any

_ALNUM = string.ascii_uppercase + string.digits


def _set(owner: Any, name: str, value: Any) -> None:
    """Install a patched method (setattr keeps the type checker out of moto's signatures)."""
    setattr(owner, name, value)


_RDS_KEPT_SETTINGS = (
    "monitoring_interval",
    "monitoring_role_arn",
    "performance_insights_kms_key_id",
    "performance_insights_retention_period",
)


def _unique_dbi_resource_id() -> str:
    return "db-" + "".join(secrets.choice(_ALNUM) for _ in range(26))


def _patch_rds() -> None:
    from moto.rds import models

    # AWS gives every DB instance its own DbiResourceId; moto gives all the
    # same one, so the provider (which reads instances by it) finds two.
    # It also keeps the monitoring and Performance Insights settings of an
    # instance, which moto drops on create.
    original_init = models.DBInstance.__init__
    original_update = models.DBInstance.update

    def keep_settings(instance: Any, kwargs: dict[str, Any]) -> None:
        for key in _RDS_KEPT_SETTINGS:
            if kwargs.get(key) is not None:
                setattr(instance, key, kwargs[key])
        if kwargs.get("enable_performance_insights") is not None:
            instance.performance_insights_enabled = bool(kwargs["enable_performance_insights"])

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.dbi_resource_id = _unique_dbi_resource_id()
        keep_settings(self, kwargs)

    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        original_update(self, *args, **kwargs)
        keep_settings(self, kwargs)

    _set(models.DBInstance, "__init__", init)
    _set(models.DBInstance, "update", update)

    # AWS marks the parameters set by the user with Source=user, and the
    # provider reads back only those.
    original_parameters = models.DBParameterGroup.update_parameters

    def update_parameters(self: Any, new_parameters: Any) -> None:
        original_parameters(self, [{**p, "Source": "user"} for p in new_parameters])

    _set(models.DBParameterGroup, "update_parameters", update_parameters)

    # A cross-region replica lives in the destination region: its subnet group
    # is looked up there. moto applied the request before moving the copy to
    # the destination backend, and the copy kept the primary's resource id.
    original_replica = models.RDSBackend.create_db_instance_read_replica

    def create_db_instance_read_replica(self: Any, db_kwargs: dict[str, Any]) -> Any:
        if self.arn_regex.match(db_kwargs["source_db_instance_identifier"]):
            db_kwargs = {"backend": self, **db_kwargs}
        replica = original_replica(self, db_kwargs)
        replica.dbi_resource_id = _unique_dbi_resource_id()
        replica.tags = list(db_kwargs.get("tags") or [])
        return replica

    _set(models.RDSBackend, "create_db_instance_read_replica", create_db_instance_read_replica)


def _patch_elasticache() -> None:
    from moto.elasticache import models, responses
    from moto.elasticache.exceptions import CacheSubnetGroupNotFound

    # NumCacheClusters is honoured by AWS when ReplicasPerNodeGroup is absent.
    original_members = models.ReplicationGroup._set_node_members_clusters_disabled

    def set_members(self: Any, **kwargs: Any) -> None:
        if not kwargs.get("replicas_per_node_group") and kwargs.get("num_cache_clusters"):
            kwargs["replicas_per_node_group"] = kwargs["num_cache_clusters"] - 1
        original_members(self, **kwargs)

    _set(models.ReplicationGroup, "_set_node_members_clusters_disabled", set_members)

    # AWS creates the member clusters of a replication group (readable with
    # DescribeCacheClusters, carrying its security groups and encryption) and
    # removes them with the group.
    original_create = models.ElastiCacheBackend.create_replication_group

    def create_replication_group(self: Any, **kwargs: Any) -> Any:
        group = original_create(self, **kwargs)
        azs = kwargs.get("preferred_cache_cluster_azs") or []
        for index, cluster_id in enumerate(group.member_clusters):
            cluster = models.CacheCluster(
                account_id=self.account_id,
                region_name=self.region_name,
                cache_cluster_id=cluster_id,
                cache_node_type=kwargs["cache_node_type"],
                replication_group_id=group.replication_group_id,
                az_mode="single-az",
                preferred_availability_zone=azs[index] if index < len(azs) else f"{self.region_name}a",
                num_cache_nodes=1,
                engine=kwargs.get("engine") or "redis",
                engine_version=kwargs.get("engine_version"),
                cache_parameter_group_name=kwargs.get("cache_parameter_group_name"),
                cache_subnet_group_name=kwargs.get("cache_subnet_group_name"),
                transit_encryption_enabled=kwargs.get("transit_encryption_enabled"),
                network_type=kwargs.get("network_type"),
                ip_discovery=kwargs.get("ip_discovery"),
                snapshot_name=None,
                preferred_maintenance_window=kwargs.get("preferred_maintenance_window"),
                port=kwargs.get("port"),
                notification_topic_arn=kwargs.get("notification_topic_arn"),
                auto_minor_version_upgrade=kwargs.get("auto_minor_version_upgrade"),
                snapshot_retention_limit=kwargs.get("snapshot_retention_limit"),
                snapshot_window=kwargs.get("snapshot_window"),
                auth_token=kwargs.get("auth_token"),
                outpost_mode=None,
                preferred_outpost_arn=None,
                preferred_availability_zones=None,
                cache_security_group_names=kwargs.get("cache_security_group_names"),
                security_group_ids=kwargs.get("security_group_ids"),
                tags=None,
                snapshot_arns=None,
                preferred_outpost_arns=None,
                log_delivery_configurations=[],
                cache_node_ids_to_remove=None,
                cache_node_ids_to_reboot=None,
            )
            vars(cluster).update(
                at_rest_encryption_enabled=bool(kwargs.get("at_rest_encryption_enabled")),
                security_groups=[
                    {"SecurityGroupId": sg, "Status": "active"}
                    for sg in kwargs.get("security_group_ids") or []
                ],
            )
            self.cache_clusters[cluster_id] = cluster
        group.security_group_ids = kwargs.get("security_group_ids")
        return group

    _set(models.ElastiCacheBackend, "create_replication_group", create_replication_group)

    original_delete = models.ElastiCacheBackend.delete_replication_group

    def delete_replication_group(self: Any, replication_group_id: str, retain_primary_cluster: Any) -> Any:
        group = original_delete(self, replication_group_id, retain_primary_cluster)
        for cluster_id in [*group.member_clusters, f"{replication_group_id}-001"]:
            self.cache_clusters.pop(cluster_id, None)
        self.replication_groups.pop(replication_group_id, None)
        return group

    _set(models.ElastiCacheBackend, "delete_replication_group", delete_replication_group)

    # DeleteCacheSubnetGroup is not implemented by moto.
    def delete_cache_subnet_group_model(self: Any, cache_subnet_group_name: str) -> None:
        if self.cache_subnet_groups.pop(cache_subnet_group_name, None) is None:
            raise CacheSubnetGroupNotFound(cache_subnet_group_name)

    def delete_cache_subnet_group(self: Any) -> Any:
        self.elasticache_backend.delete_cache_subnet_group(self._get_param("CacheSubnetGroupName"))
        from moto.core.responses import EmptyResult

        return EmptyResult()

    _set(models.ElastiCacheBackend, "delete_cache_subnet_group", delete_cache_subnet_group_model)
    _set(responses.ElastiCacheResponse, "delete_cache_subnet_group", delete_cache_subnet_group)


def _patch_application_autoscaling() -> None:
    # Tagging of scalable targets (TagResource, UntagResource,
    # ListTagsForResource, Tags on RegisterScalableTarget) is not implemented.
    from moto.applicationautoscaling import responses

    tags: dict[str, dict[str, str]] = {}
    cls = responses.ApplicationAutoScalingResponse
    original_register = cls.register_scalable_target

    def register_scalable_target(self: Any) -> str:
        body = original_register(self)
        arn = json.loads(body)["ScalableTargetARN"]
        tags.setdefault(arn, {}).update(self._get_param("Tags") or {})
        return body

    def list_tags_for_resource(self: Any) -> str:
        return json.dumps({"Tags": tags.get(self._get_param("ResourceARN"), {})})

    def tag_resource(self: Any) -> str:
        tags.setdefault(self._get_param("ResourceARN"), {}).update(self._get_param("Tags") or {})
        return "{}"

    def untag_resource(self: Any) -> str:
        current = tags.setdefault(self._get_param("ResourceARN"), {})
        for key in self._get_param("TagKeys") or []:
            current.pop(key, None)
        return "{}"

    _set(cls, "register_scalable_target", register_scalable_target)
    _set(cls, "list_tags_for_resource", list_tags_for_resource)
    _set(cls, "tag_resource", tag_resource)
    _set(cls, "untag_resource", untag_resource)


def _patch_ecs() -> None:
    # AWS echoes the deployment settings of a service; moto drops them, so
    # every plan would want to set them again.
    from moto.ecs import responses

    cls = responses.EC2ContainerServiceResponse
    fields = {
        "availabilityZoneRebalancing": "availability_zone_rebalancing",
        "deploymentConfiguration": "deployment_configuration",
        "healthCheckGracePeriodSeconds": "health_check_grace_period_seconds",
        "enableECSManagedTags": "enable_ecs_managed_tags",
        "enableExecuteCommand": "enable_execute_command",
    }

    def remember(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def action(self: Any) -> Any:
            result = original(self)
            cluster = self._get_param("cluster") or "default"
            name = self._get_param("serviceName") or self._get_param("service")
            backend = self.ecs_backend
            for service in backend.services.values():
                if service.name == name.split("/")[-1] and cluster.split("/")[-1] == service.cluster_name:
                    for param, attribute in fields.items():
                        value = self._get_param(param)
                        if value is not None:
                            setattr(service, attribute, value)
            return result

        return action

    _set(cls, "create_service", remember(cls.create_service))
    _set(cls, "update_service", remember(cls.update_service))


def _patch_route53() -> None:
    # AWS takes the log group ARN without the trailing ":*"; moto compares it
    # with one.
    from moto.route53 import models

    original = models.Route53Backend.create_query_logging_config

    def create_query_logging_config(self: Any, hosted_zone_id: str, log_group_arn: str) -> Any:
        wildcard = log_group_arn if log_group_arn.endswith(":*") else f"{log_group_arn}:*"
        config = original(self, hosted_zone_id, wildcard)
        config.cloud_watch_logs_log_group_arn = log_group_arn
        return config

    _set(models.Route53Backend, "create_query_logging_config", create_query_logging_config)


PATCHES = (_patch_rds, _patch_elasticache, _patch_application_autoscaling, _patch_ecs, _patch_route53)


def main(argv: list[str] | None = None) -> None:
    for patch in PATCHES:
        patch()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
