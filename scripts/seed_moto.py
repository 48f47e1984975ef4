#!/usr/bin/env python3
"""Seed a running moto server with MenoTime's three environments, as the operating
manual (ecs-fargate.txt) describes them.

Creates, in us-west-1 of moto's account 123456789012:
  - a VPC with two private subnets and the menotime-ecs-sg security group;
  - the ECR repository menotime/backend with the images the events in events/ name
    (digests are derived from the manifests' layers, so they are the same every run);
    each image has a completed scan with the findings listed in IMAGES;
  - per environment: the cluster, the task definition from the manual, the service
    (desired count, deployment configuration, circuit breaker in prod; set again with
    UpdateService, since moto's CreateService does not keep it), and the two
    SNS topics (notify, on-call), each with an SQS queue subscribed so tests and the
    demo can read what was published;
  - the Application Auto Scaling target of the service's desired count in staging
    (min 1, max 2) and prod (min 2, max 4); dev has none (scaled by hand).

Prints one JSON document describing what it created (ARNs, queue URLs, digests).

Usage: seed_moto.py --endpoint http://127.0.0.1:PORT
"""

import argparse
import copy
import hashlib
import json
import sys
import urllib.request

import boto3

REGION = "us-west-1"
ACCOUNT = "123456789012"
REPOSITORY = "menotime/backend"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
SCAN_COMPLETED_AT = 1795600000  # 2026-11-25T09:46:40Z, seconds since the epoch

# Images in the repository: name -> (tags, finding counts of its completed scan).
IMAGES = {
    "v1.2.2": (["v1.2.2"], {"LOW": 2}),
    "v1.2.3": (["v1.2.3"], {"LOW": 1}),
    "v1.2.4": (["v1.2.4", "latest"], {"LOW": 3, "INFORMATIONAL": 4}),
    "v1.2.5": (["v1.2.5"], {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 4}),
    "v1.2.6": (["v1.2.6"], {"MEDIUM": 2, "LOW": 1}),
    "develop": (["develop", "a1b2c3d"], {"LOW": 1}),
    "main": (["main", "x9y8z7w"], {}),
    "pr-42": (["pr-42", "f00dfee"], {"CRITICAL": 3}),
}


def digest_of(name):
    """moto's digest: sha256 of the concatenated layer digests of the manifest."""
    return "sha256:" + hashlib.sha256("".join(layers(name)).encode()).hexdigest()


def layers(name):
    base = "sha256:" + hashlib.sha256(b"python:3.11-slim").hexdigest()
    app = "sha256:" + hashlib.sha256(f"menotime-backend {name}".encode()).hexdigest()
    return [base, app]


def manifest(name):
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7023,
                "digest": "sha256:" + hashlib.sha256(f"config {name}".encode()).hexdigest(),
            },
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654, "digest": d}
                for d in layers(name)
            ],
        }
    )


def container(env, image):
    """The menotime-backend container of the manual's task definitions."""
    prod = env == "prod"
    return {
        "name": "menotime-backend",
        "image": image,
        "essential": True,
        "portMappings": [{"containerPort": 8000, "hostPort": 8000, "protocol": "tcp"}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": f"/aws/ecs/menotime-{env}",
                "awslogs-region": REGION,
                "awslogs-stream-prefix": "ecs",
                "awslogs-datetime-format": "%Y-%m-%d %H:%M:%S",
            },
        },
        "environment": [
            {"name": "ENVIRONMENT", "value": {"dev": "development", "staging": "staging", "prod": "production"}[env]},
            {"name": "LOG_LEVEL", "value": "WARNING" if prod else "DEBUG"},
            {"name": "API_DEBUG", "value": "false" if prod else "true"},
            # A credential-bearing value, as real task definitions have: no log line
            # or notification may ever show it (tests/tests/logs.rs).
            {"name": "SENTRY_DSN", "value": f"https://5f0c1e2d9a7b4c3e@o4501.ingest.sentry.io/{env}-menotime"},
        ]
        + ([{"name": "SENTRY_SAMPLE_RATE", "value": "0.1"}] if prod else []),
        "secrets": [
            {"name": "DATABASE_URL", "valueFrom": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:menotime/db/{env}"},
            {
                "name": "API_KEY_STRIPE",
                "valueFrom": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:menotime/api/stripe-{'live' if prod else 'test'}",
            },
        ],
        "healthCheck": {
            "command": ["CMD-SHELL", "curl -f http://localhost:8000/health || exit 1"],
            "interval": 30,
            "timeout": 5,
            "retries": 3 if prod else 2,
            "startPeriod": 60,
        },
    }


def task_definition(env, image):
    """The manual's task definition for `env`. Prod also sets the fields the manual
    leaves at their defaults (runtime platform, ephemeral storage, a scratch volume)
    and tags, so that the fidelity test covers them."""
    prod = env == "prod"
    td = {
        "family": f"menotime-backend-{env}",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "1024" if prod else "256",
        "memory": "2048" if prod else "1024",
        "containerDefinitions": [container(env, image)],
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole",
        "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/menotime-ecs-task-role",
        "tags": [
            {"key": "application", "value": "menotime"},
            {"key": "environment", "value": env},
        ],
    }
    if prod:
        td["runtimePlatform"] = {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"}
        td["ephemeralStorage"] = {"sizeInGiB": 30}
        td["volumes"] = [{"name": "scratch"}]
        td["containerDefinitions"][0]["mountPoints"] = [
            {"sourceVolume": "scratch", "containerPath": "/tmp/scratch", "readOnly": False}
        ]
        td["containerDefinitions"][0]["ulimits"] = [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}]
        td["containerDefinitions"][0]["stopTimeout"] = 30
        td["tags"].append({"key": "cost-center", "value": "clinical-platform"})
    return td


ENVIRONMENTS = {
    # env: (desired count, deployment configuration, images its task definition revisions run)
    "dev": (1, {"maximumPercent": 200, "minimumHealthyPercent": 0}, [f"{REGISTRY}/{REPOSITORY}:latest"]),
    "staging": (2, {"maximumPercent": 200, "minimumHealthyPercent": 50}, [f"{REGISTRY}/{REPOSITORY}:latest"]),
    "prod": (
        2,
        {
            "maximumPercent": 150,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        },
        [f"{REGISTRY}/{REPOSITORY}:v1.2.2", f"{REGISTRY}/{REPOSITORY}:v1.2.3"],
    ),
}


# env: (min, max) of the service's scalable target (ecs:service:DesiredCount). dev has
# none: it is scaled by hand.
SCALABLE_TARGETS = {"staging": (1, 2), "prod": (2, 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", required=True)
    args = ap.parse_args()
    kw = dict(
        endpoint_url=args.endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ec2 = boto3.client("ec2", **kw)
    ecr = boto3.client("ecr", **kw)
    ecs = boto3.client("ecs", **kw)
    sns = boto3.client("sns", **kw)
    sqs = boto3.client("sqs", **kw)
    autoscaling = boto3.client("application-autoscaling", **kw)

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for i, z in enumerate(zones)
    ]
    sg = ec2.create_security_group(GroupName="menotime-ecs-sg", Description="MenoTime ECS tasks", VpcId=vpc)["GroupId"]

    ecr.create_repository(
        repositoryName=REPOSITORY,
        imageScanningConfiguration={"scanOnPush": True},
        imageTagMutability="MUTABLE",
    )
    images = {}
    results = []
    for name, (tags, counts) in IMAGES.items():
        for tag in tags:
            ecr.put_image(repositoryName=REPOSITORY, imageManifest=manifest(name), imageTag=tag)
        digest = digest_of(name)
        ecr.start_image_scan(repositoryName=REPOSITORY, imageId={"imageDigest": digest})
        images[name] = {"digest": digest, "tags": tags, "counts": counts}
        results.append(
            {
                "registryId": ACCOUNT,
                "repositoryName": REPOSITORY,
                "imageId": {"imageDigest": digest},
                "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed successfully."},
                "imageScanFindings": {
                    "imageScanCompletedAt": SCAN_COMPLETED_AT,
                    "vulnerabilitySourceUpdatedAt": SCAN_COMPLETED_AT,
                    "findingSeverityCounts": counts,
                    "findings": [],
                },
            }
        )
    # One queued result per image; moto hands each to the first DescribeImageScanFindings
    # of that image and keeps returning it for the same request.
    req = urllib.request.Request(
        f"{args.endpoint}/moto-api/static/ecr/scan-finding-results",
        data=json.dumps({"results": results, "region": REGION}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req).read()

    out = {"region": REGION, "account": ACCOUNT, "repository": REPOSITORY, "images": images, "environments": {}}
    for env, (desired, deployment_config, revisions) in ENVIRONMENTS.items():
        cluster = f"menotime-{env}-cluster"
        service = f"menotime-{env}-service"
        ecs.create_cluster(clusterName=cluster, tags=[{"key": "environment", "value": env}])
        arn = None
        for image in revisions:
            arn = ecs.register_task_definition(**copy.deepcopy(task_definition(env, image)))["taskDefinition"][
                "taskDefinitionArn"
            ]
        svc = ecs.create_service(
            cluster=cluster,
            serviceName=service,
            taskDefinition=arn,
            desiredCount=desired,
            launchType="FARGATE",
            deploymentConfiguration=deployment_config,
            healthCheckGracePeriodSeconds=60,
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg], "assignPublicIp": "DISABLED"}
            },
            tags=[{"key": "environment", "value": env}, {"key": "application", "value": "menotime"}],
        )["service"]
        # moto's CreateService drops deploymentConfiguration; UpdateService keeps it
        # (scan-gate refuses to deploy to a prod service without prod's configuration).
        ecs.update_service(cluster=cluster, service=service, deploymentConfiguration=deployment_config)
        scalable_target = None
        if env in SCALABLE_TARGETS:
            low, high = SCALABLE_TARGETS[env]
            resource_id = f"service/{cluster}/{service}"
            autoscaling.register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=resource_id,
                ScalableDimension="ecs:service:DesiredCount",
                MinCapacity=low,
                MaxCapacity=high,
            )
            scalable_target = {"resource_id": resource_id, "min": low, "max": high}
        topics = {}
        for kind in ("notify", "oncall"):
            topic = sns.create_topic(Name=f"menotime-{env}-{kind}")["TopicArn"]
            queue = sqs.create_queue(QueueName=f"menotime-{env}-{kind}-inbox")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
            topics[kind] = (topic, queue)
        out["environments"][env] = {
            "cluster": cluster,
            "service": service,
            "service_arn": svc["serviceArn"],
            "task_definition": arn,
            "family": f"menotime-backend-{env}",
            "container": "menotime-backend",
            "notify_topic_arn": topics["notify"][0],
            "notify_queue_url": topics["notify"][1],
            "oncall_topic_arn": topics["oncall"][0],
            "oncall_queue_url": topics["oncall"][1],
            "scalable_target": scalable_target,
        }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
