#!/usr/bin/env python3
"""Assert the security rules of template.yaml (the issue's "Template security" part).

Reads the template with cfn-lint's own loader (so !Ref / !Sub / !GetAtt parse) and
checks, without any AWS account:

  IAM (every policy of every function's execution role, as written and as deployed
  after SAM's transform):
    - no action with a wildcard, no NotAction / NotResource, Allow only; only actions
      this script knows how to scope (KNOWN_ACTIONS);
    - Resource "*" only for actions that have no resource-level permissions (an
      explicit allow-list below), each such statement with a comment saying so;
    - ECS service actions on this environment's service ARN only (tag actions with
      a tag-key condition), task-definition tagging only while registering or of the
      menotime:deployed key alone; deploy-notifier's ecs:UpdateService (the automatic
      rollback) only in a policy of its own that exists under the AutoRollback
      condition;
    - sns:Publish only to the stack's notify / on-call topics; KMS only on the
      stack's key through SNS; logs (CreateLogStream, PutLogEvents; never
      CreateLogGroup) only to the function's own log group of this template; SQS
      only to the failure queue; ECR only on the repository;
    - iam:PassRole only on the roles named by TaskRoleName / ExecutionRoleName,
      with iam:PassedToService = ecs-tasks.amazonaws.com; no other IAM action;
    - the roles trust lambda.amazonaws.com only; SAM adds no managed policy.
  Functions: reserved concurrency 1 on all three (deploy-notifier's incident
  markers rely on it as scan-gate's deferral and the scaler's snapshot do). Globals carry
  what the three share (Runtime, Handler, CodeUri, Architectures, MemorySize,
  Timeout, the shared variables), and no function sets them again.
  Log groups: each function logs (LoggingConfig.LogGroup) to an AWS::Logs::LogGroup
  of this template named /aws/lambda/<its FunctionName>, with RetentionInDays from
  a parameter whose values CloudWatch accepts, encrypted with the stack's key (whose
  policy lets CloudWatch Logs use it for exactly those groups).
  Service alarms (the post-deployment watch): <AlarmPrefix><what> for 5xx, latency,
  unhealthy-hosts, memory-high and db-connections, each created only when its
  resource parameter is set (memory-high always), the memory one at the manual's
  85%, none with actions (deploy-notifier is their only reader); deploy-notifier's
  Alarms rule names exactly those five alarms (never the prefix alone, which would
  also match the automation's own alarms), and its task rule passes OOM kills,
  TaskFailedToStart and SpotInterruption stops only.
  Alarms: per function Errors, Throttles, AsyncEventsDropped and
  DestinationDeliveryFailures; per EventBridge rule FailedInvocations (with
  EventBusName on a custom bus); per Scheduler schedule, in a schedule group of its
  own, TargetErrorCount and InvocationDroppedCount; a depth alarm on every
  dead-letter queue; all notifying AlarmTopic (on-call's e-mail), none a contract
  topic, all with a description and missing data not breaching.
  Encryption: every SNS topic with the stack's KMS key (rotated); every queue
  encrypted (SSE-SQS or KMS).
  Approvals: the approval rule on the dedicated menotime-<env>-approvals bus, whose
  policy lets only the role named by OperatorsRoleName put events (Allow for it,
  Deny for any other principal); the failure queue's policy names every rule by its
  real ARN (rule/<bus>/<name> on a custom bus); scan-gate's APPROVAL_EVENT_BUS is
  that bus.
  samconfig.toml: no ACCOUNT_ID placeholder; dev, staging and prod each with deploy
  and sync sections that agree and set every parameter without a default (and no
  parameter the template lacks; role names, not ARNs); prod's deploy confirms its
  change set; builds run one at a time (parallel = false).

Prints one PASS/FAIL line per check; exits non-zero if any check fails.

--self-test proves the checks can fail: it breaks the template (or samconfig.toml) in
memory one rule at a time (drops the iam:PassedToService condition, puts the approval
rule back on the default bus, puts ACCOUNT_ID back in samconfig.toml, ...) and passes
only if every such break is caught by a FAIL.

Usage: .venv/bin/python scripts/check_template_security.py [template.yaml]
       .venv/bin/python scripts/check_template_security.py --self-test [template.yaml]
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from cfnlint.decode import decode

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: the same parser, as pip vendors it
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent

# Actions that IAM only accepts with Resource "*" (no resource-level permissions
# in the Service Authorization Reference). Anything else on "*" fails.
STAR_ONLY_ACTIONS = {
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "inspector2:ListFindings",
    "application-autoscaling:DescribeScalableTargets",
}
# Actions on this environment's ECS service (the rest of ecs:* the functions use
# is about task definitions).
ECS_TASK_DEFINITION_ACTIONS = {"ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"}
ECS_TAG_ACTIONS = {"ecs:TagResource", "ecs:UntagResource"}
# The only tag key a function may write on an existing task definition (scan-gate's
# mark on the revision it deployed).
TASK_DEFINITION_TAG_KEYS = ["menotime:deployed"]
SERVICE_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/${ClusterName}/${ServiceName}"
}
TASK_DEFINITION_ARNS = {
    "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/*"
}
SCALABLE_TARGET_ARNS = "arn:${AWS::Partition}:application-autoscaling:${AWS::Region}:${AWS::AccountId}:scalable-target/*"
REPOSITORY_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/${RepositoryName}"
}
# Every action the functions may be granted; each is scoped by a check below. A new
# action fails the build until this list (and, if needed, a check) says how it is
# scoped.
KNOWN_ACTIONS = STAR_ONLY_ACTIONS | {
    "application-autoscaling:RegisterScalableTarget",
    "ecr:DescribeImageScanFindings",
    "ecs:DescribeServices",
    "ecs:UpdateService",
    "ecs:TagResource",
    "ecs:UntagResource",
    "iam:PassRole",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sns:Publish",
    "sqs:SendMessage",
}
CONTRACT_TOPICS = ["NotifyTopic", "OncallTopic"]
ALARM_TOPIC = "AlarmTopic"
FAILURE_QUEUE = "FailureQueue"
KEY = "OpsKey"
PASS_ROLE_PARAMETERS = ["TaskRoleName", "ExecutionRoleName"]
OPERATORS_PARAMETER = "OperatorsRoleName"
ROLE_NAME_PARAMETERS = PASS_ROLE_PARAMETERS + [OPERATORS_PARAMETER]


def role_arn(parameter: str) -> dict[str, str]:
    """The ARN the template builds from a role-name parameter (with its path)."""
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/${{{parameter}}}"}


# The values CloudWatch Logs accepts for RetentionInDays.
CLOUDWATCH_RETENTION_DAYS = {
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
}
# What the three functions share, in Globals.Function, and set by none of them.
GLOBAL_FUNCTION_PROPERTIES = {
    "Runtime": "provided.al2023",
    "Handler": "bootstrap",
    "CodeUri": "./",
    "Architectures": ["arm64"],
    "MemorySize": None,  # any value; a function may override it
    "Timeout": None,  # any value; a function may override it
}
SAME_FOR_ALL = ["Runtime", "Handler", "CodeUri", "Architectures"]
SHARED_VARIABLES = [
    "ENVIRONMENT",
    "CLUSTER_NAME",
    "SERVICE_NAME",
    "NOTIFY_TOPIC_ARN",
    "ONCALL_TOPIC_ARN",
    "DRY_RUN",
    "LOG_GROUP_NAME",
]
# Per-function Lambda alarms (metric -> what it catches).
FUNCTION_ALARM_METRICS = ["Errors", "Throttles", "AsyncEventsDropped", "DestinationDeliveryFailures"]
SCHEDULE_ALARM_METRICS = ["TargetErrorCount", "InvocationDroppedCount"]
SAMCONFIG_ENVIRONMENTS = ["dev", "staging", "prod"]
APPROVAL_BUS_NAME = "menotime-${Environment}-approvals"
# Logical id -> short name (menotime-<env>-<short>), and whether reserved concurrency
# must be exactly 1.
FUNCTIONS = {
    "ScanGateFunction": ("scan-gate", True),
    "DeployNotifierFunction": ("deploy-notifier", True),
    "OffhoursScalerFunction": ("offhours-scaler", True),
}
APPROVAL_FUNCTION, APPROVAL_EVENT = "ScanGateFunction", "Approval"
# The automatic rollback: deploy-notifier's only change to the service.
ROLLBACK_FUNCTION, ROLLBACK_CONDITION = "DeployNotifierFunction", "AutoRollback"
ROLLBACK_PARAMETER = "AutoRollbackOnRegression"
# The service's own alarms: logical id -> (name after the prefix, condition or None).
SERVICE_ALARMS = {
    "ServiceServerErrorsAlarm": ("5xx", "HasLoadBalancer"),
    "ServiceLatencyAlarm": ("latency", "HasLoadBalancer"),
    "ServiceUnhealthyHostsAlarm": ("unhealthy-hosts", "HasLoadBalancerAndTargetGroup"),
    "ServiceMemoryHighAlarm": ("memory-high", None),
    "ServiceDbConnectionsAlarm": ("db-connections", "HasDbInstance"),
}
# What each condition of a service alarm must test: the parameter that must be set.
SERVICE_ALARM_CONDITIONS = {
    "HasLoadBalancer": {"Fn::Not": [{"Fn::Equals": [{"Ref": "LoadBalancerFullName"}, ""]}]},
    "HasTargetGroup": {"Fn::Not": [{"Fn::Equals": [{"Ref": "TargetGroupFullName"}, ""]}]},
    "HasLoadBalancerAndTargetGroup": {
        "Fn::And": [{"Condition": "HasLoadBalancer"}, {"Condition": "HasTargetGroup"}]
    },
    "HasDbInstance": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DbInstanceIdentifier"}, ""]}]},
}
ALARM_PREFIX = {
    "Fn::If": ["HasAlarmPrefix", {"Ref": "AlarmPrefix"}, {"Fn::Sub": "menotime-${Environment}-"}]
}
ALARMS_FUNCTION, ALARMS_EVENT, TASKS_EVENT = "DeployNotifierFunction", "Alarms", "TaskStopped"
MANUAL_MEMORY_PERCENT = 85


def alarm_name(what: str) -> dict[str, Any]:
    """The name of the service alarm `what`: <AlarmPrefix><what>."""
    return {"Fn::Sub": [f"${{Prefix}}{what}", {"Prefix": ALARM_PREFIX}]}


class Checks:
    def __init__(self) -> None:
        self.failed = 0
        self.count = 0

    def check(self, ok: bool, what: str, why: str = "") -> bool:
        self.count += 1
        if not ok:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {what}{'' if ok or not why else f': {why}'}")
        return ok


def as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def getatt(name: str, attr: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, attr]}


def plain(v: Any) -> Any:
    """cfn-lint's nodes as plain dicts / lists / strings (for printing and comparing)."""
    return json.loads(json.dumps(v))


def sub_text(v: Any) -> str | None:
    return v["Fn::Sub"] if isinstance(v, dict) and isinstance(v.get("Fn::Sub"), str) else None


def statements(policy_document: Any) -> list[dict[str, Any]]:
    return [s for s in as_list(policy_document.get("Statement")) if isinstance(s, dict)]


def attached_policies(template: dict[str, Any], role_id: str) -> list[str]:
    """The AWS::IAM::Policy resources of this template attached to `role_id`."""
    return [
        k
        for k, v in template["Resources"].items()
        if v.get("Type") == "AWS::IAM::Policy"
        and ref(role_id) in [plain(r) for r in as_list(v.get("Properties", {}).get("Roles"))]
    ]


def function_policies(template: dict[str, Any], fn: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for every statement the function's execution role gets:
    the role named by Role (an AWS::IAM::Role of this template), the
    AWS::IAM::Policy resources attached to it, and SAM's inline Policies (none
    expected, but checked the same)."""
    resources = template["Resources"]
    props = resources[fn].get("Properties", {})
    role = props.get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        role_id = role["Fn::GetAtt"][0]
        for p in as_list(resources[role_id]["Properties"].get("Policies")):
            for i, s in enumerate(statements(p.get("PolicyDocument", {}))):
                yield f"{role_id}.{p.get('PolicyName')}[{s.get('Sid', i)}]", s
        for pid in attached_policies(template, role_id):
            doc = resources[pid].get("Properties", {}).get("PolicyDocument", {})
            for i, s in enumerate(statements(doc)):
                yield f"{pid}[{s.get('Sid', i)}]", s
    for n, p in enumerate(as_list(props.get("Policies"))):
        if isinstance(p, dict) and "Statement" in p:
            for i, s in enumerate(statements(p)):
                yield f"{fn}.Policies[{n}][{s.get('Sid', i)}]", s


def function_role(template: dict[str, Any], fn: str) -> str | None:
    role = template["Resources"][fn].get("Properties", {}).get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        role_id = role["Fn::GetAtt"][0]
        if template["Resources"].get(role_id, {}).get("Type") == "AWS::IAM::Role":
            return role_id
    return None


def function_log_group(template: dict[str, Any], fn: str) -> str | None:
    """The AWS::Logs::LogGroup of this template the function logs to
    (LoggingConfig.LogGroup: !Ref <it>), if any."""
    lc = template["Resources"][fn].get("Properties", {}).get("LoggingConfig") or {}
    g = plain(lc.get("LogGroup"))
    if isinstance(g, dict) and isinstance(g.get("Ref"), str):
        if template["Resources"].get(g["Ref"], {}).get("Type") == "AWS::Logs::LogGroup":
            return g["Ref"]
    return None


def sam_transform(path: Path, template: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The template as CloudFormation deploys it (SAM's roles for schedules included)."""
    try:
        from cfnlint.template.transforms._sam import Transform
    except ImportError as e:  # pragma: no cover - cfn-lint's layout changed
        return None, f"cannot import cfn-lint's SAM transform: {e}"
    t = Transform(str(path), copy.deepcopy(template), "us-west-1")
    errors = t.transform_template()
    if errors:
        return None, "; ".join(str(e) for e in errors)
    return t.template(), ""


# ---------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------
def check_iam(c: Checks, template: dict[str, Any], text: str) -> None:
    resources = template["Resources"]
    topics = [ref(t) for t in CONTRACT_TOPICS]
    pass_roles = [role_arn(p) for p in PASS_ROLE_PARAMETERS]
    pass_role_seen: list[str] = []

    for fn in FUNCTIONS:
        if not c.check(fn in resources, f"{fn} exists"):
            continue
        role_id = function_role(template, fn)
        c.check(
            role_id is not None,
            f"{fn}: runs with an execution role of this template (Role: !GetAtt <AWS::IAM::Role>.Arn)",
            'SAM\'s own role carries AWSLambdaBasicExecutionRole (logs on Resource "*")',
        )
        if role_id:
            trust = statements(resources[role_id]["Properties"].get("AssumeRolePolicyDocument", {}))
            c.check(
                len(trust) == 1
                and trust[0].get("Effect") == "Allow"
                and plain(trust[0].get("Principal")) == {"Service": "lambda.amazonaws.com"}
                and as_list(trust[0].get("Action")) == ["sts:AssumeRole"],
                f"{role_id}: only lambda.amazonaws.com may assume it",
                json.dumps(plain(trust)),
            )
            c.check(
                not resources[role_id]["Properties"].get("ManagedPolicyArns"),
                f"{role_id}: no managed policy (all of its permissions are written here)",
            )
        stmts = list(function_policies(template, fn))
        if not c.check(bool(stmts), f"{fn}: has IAM statements to check ({len(stmts)})"):
            continue

        # Wildcards.
        bad = [
            f"{where}: {a}"
            for where, s in stmts
            for a in as_list(s.get("Action"))
            if not isinstance(a, str) or "*" in a or "?" in a
        ]
        bad += [
            f"{where}: {k}"
            for where, s in stmts
            for k in ("NotAction", "NotResource", "NotPrincipal")
            if k in s
        ]
        bad += [
            f"{where}: Effect {s.get('Effect')}" for where, s in stmts if s.get("Effect") != "Allow"
        ]
        c.check(
            not bad,
            f"{fn}: no wildcard action (nor NotAction / NotResource), Allow statements only",
            "; ".join(bad),
        )

        bad = sorted({str(a) for _, s in stmts for a in as_list(s.get("Action"))} - KNOWN_ACTIONS)
        c.check(
            not bad,
            f"{fn}: every action is one whose scope this script checks (KNOWN_ACTIONS)",
            f"unknown {bad}",
        )

        # Resource "*" only for actions without resource-level permissions.
        bad = [
            f"{where}: {sorted(set(as_list(s.get('Action'))) - STAR_ONLY_ACTIONS)}"
            for where, s in stmts
            if "*" in as_list(s.get("Resource"))
            and not set(as_list(s.get("Action"))) <= STAR_ONLY_ACTIONS
        ]
        c.check(
            not bad,
            f'{fn}: Resource "*" only for {sorted(STAR_ONLY_ACTIONS)} (no resource-level permissions)',
            "; ".join(bad),
        )
        # The only other wildcards: task definitions (tagged on register, checked
        # below) and scalable targets (their ids are random; Application Auto
        # Scaling checks ecs:UpdateService on the service too). The log group's
        # streams are named through its Arn attribute (checked below).
        allowed_wild = TASK_DEFINITION_ARNS | {SCALABLE_TARGET_ARNS}
        bad = []
        for where, s in stmts:
            for r in as_list(s.get("Resource")):
                arn = r if isinstance(r, str) else sub_text(r) or json.dumps(plain(r))
                if arn != "*" and "*" in arn and arn not in allowed_wild:
                    bad.append(f"{where}: {arn}")
        c.check(not bad, f"{fn}: no other wildcard resource", "; ".join(bad))

        # ECS.
        bad = []
        for where, s in stmts:
            actions = {
                a for a in as_list(s.get("Action")) if isinstance(a, str) and a.startswith("ecs:")
            }
            service_actions = actions - ECS_TASK_DEFINITION_ACTIONS
            if not service_actions:
                continue
            res = [plain(r) for r in as_list(s.get("Resource"))]
            on_service = res == [SERVICE_ARN]
            on_task_defs = [sub_text(r) for r in as_list(s.get("Resource"))] and all(
                sub_text(r) in TASK_DEFINITION_ARNS for r in as_list(s.get("Resource"))
            )
            cond = plain(s.get("Condition", {}))
            if on_service:
                if service_actions & ECS_TAG_ACTIONS and not (
                    cond.get("ForAllValues:StringEquals", {}).get("aws:TagKeys")
                ):
                    bad.append(f"{where}: tags the service without an aws:TagKeys condition")
            elif on_task_defs and service_actions == {"ecs:TagResource"}:
                # Tagging while registering, or only the key that marks a revision
                # deployed.
                if cond not in (
                    {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
                    {"ForAllValues:StringEquals": {"aws:TagKeys": TASK_DEFINITION_TAG_KEYS}},
                ):
                    bad.append(
                        f"{where}: tags task definitions without ecs:CreateAction = RegisterTaskDefinition "
                        f"or aws:TagKeys = {TASK_DEFINITION_TAG_KEYS}"
                    )
            else:
                bad.append(f"{where}: {sorted(service_actions)} on {json.dumps(res)}")
        c.check(
            not bad,
            f"{fn}: ECS service actions only on service/${{ClusterName}}/${{ServiceName}}",
            "; ".join(bad),
        )

        # SNS, KMS, logs, SQS.
        bad = [
            f"{where}: {json.dumps(plain(r))}"
            for where, s in stmts
            if any(str(a).startswith("sns:") for a in as_list(s.get("Action")))
            for r in as_list(s.get("Resource"))
            if plain(r) not in topics
        ]
        bad += [
            f"{where}: {a}"
            for where, s in stmts
            for a in as_list(s.get("Action"))
            if str(a).startswith("sns:") and a != "sns:Publish"
        ]
        c.check(not bad, f"{fn}: sns:Publish only, only to {CONTRACT_TOPICS}", "; ".join(bad))
        bad = []
        for where, s in stmts:
            if any(str(a).startswith("kms:") for a in as_list(s.get("Action"))):
                via = plain(s.get("Condition", {})).get("StringEquals", {}).get("kms:ViaService")
                if [plain(r) for r in as_list(s.get("Resource"))] != [
                    getatt(KEY, "Arn")
                ] or via != {"Fn::Sub": "sns.${AWS::Region}.amazonaws.com"}:
                    bad.append(where)
        c.check(
            not bad, f"{fn}: KMS only on {KEY}, only through SNS (kms:ViaService)", "; ".join(bad)
        )
        # Logs: only the function's own log group, a resource of this template
        # (its ARN, or its Arn attribute, which ends in ":*": its streams).
        group = function_log_group(template, fn)
        own = (
            [
                {
                    "Fn::Sub": f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:${{{group}}}"
                },
                getatt(group, "Arn"),
            ]
            if group
            else []
        )
        bad = [
            f"{where}: {json.dumps(plain(r))}"
            for where, s in stmts
            if any(str(a).startswith("logs:") for a in as_list(s.get("Action")))
            for r in as_list(s.get("Resource"))
            if plain(r) not in own
        ]
        c.check(
            bool(own) and not bad,
            f"{fn}: logs only to its own log group ({group or 'none: LoggingConfig.LogGroup missing'})",
            "; ".join(bad),
        )
        bad = [
            f"{where}: {json.dumps(plain(r))}"
            for where, s in stmts
            if any(str(a).startswith("sqs:") for a in as_list(s.get("Action")))
            for r in as_list(s.get("Resource"))
            if plain(r) != getatt(FAILURE_QUEUE, "Arn")
        ]
        c.check(not bad, f"{fn}: SQS only to {FAILURE_QUEUE}", "; ".join(bad))
        bad = [
            f"{where}: {json.dumps(plain(r))}"
            for where, s in stmts
            if any(str(a).startswith("ecr:") for a in as_list(s.get("Action")))
            for r in as_list(s.get("Resource"))
            if plain(r) != REPOSITORY_ARN
        ]
        c.check(not bad, f"{fn}: ECR only on repository/${{RepositoryName}}", "; ".join(bad))

        # IAM actions: PassRole of the task's two roles to ECS tasks, nothing else.
        bad = []
        for where, s in stmts:
            iam = [a for a in as_list(s.get("Action")) if str(a).startswith("iam:")]
            if not iam:
                continue
            if as_list(s.get("Action")) != ["iam:PassRole"]:
                bad.append(
                    f"{where}: {as_list(s.get('Action'))} (only iam:PassRole, alone in its statement)"
                )
                continue
            pass_role_seen.append(where)
            res = [plain(r) for r in as_list(s.get("Resource"))]
            if not res or any(r not in pass_roles for r in res):
                bad.append(f"{where}: PassRole on {json.dumps(res)}")
            cond = plain(s.get("Condition", {}))
            if cond != {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}:
                bad.append(f"{where}: condition {json.dumps(cond)}")
        c.check(
            not bad,
            f"{fn}: iam:PassRole only on {PASS_ROLE_PARAMETERS} with iam:PassedToService = ecs-tasks.amazonaws.com",
            "; ".join(bad),
        )
    c.check(
        len(pass_role_seen) == 1 and pass_role_seen[0].startswith("ScanGateRole"),
        "iam:PassRole is granted once, to scan-gate (RegisterTaskDefinition), and to no other function",
        f"found in {pass_role_seen}",
    )

    # deploy-notifier changes the service only to roll a regression back, and only
    # when the stack says so: ecs:UpdateService in a policy of its own, created
    # under the AutoRollback condition (AutoRollbackOnRegression = "true").
    if ROLLBACK_FUNCTION in resources:
        bad = []
        for where, s in function_policies(template, ROLLBACK_FUNCTION):
            if "ecs:UpdateService" not in as_list(s.get("Action")):
                continue
            pid = where.split("[", 1)[0]
            res = resources.get(pid, {})
            if res.get("Type") != "AWS::IAM::Policy" or res.get("Condition") != ROLLBACK_CONDITION:
                bad.append(f"{where}: granted without the {ROLLBACK_CONDITION} condition")
            elif as_list(s.get("Action")) != ["ecs:UpdateService"]:
                bad.append(f"{where}: {as_list(s.get('Action'))} (ecs:UpdateService alone)")
        cond = plain(template.get("Conditions", {}).get(ROLLBACK_CONDITION))
        if cond != {"Fn::Equals": [ref(ROLLBACK_PARAMETER), "true"]}:
            bad.append(f"condition {ROLLBACK_CONDITION} is {json.dumps(cond)}")
        c.check(
            not bad,
            f"{ROLLBACK_FUNCTION}: ecs:UpdateService only in a policy that exists when "
            f"{ROLLBACK_PARAMETER} is \"true\" ({ROLLBACK_CONDITION})",
            "; ".join(bad),
        )

    # Every Resource "*" line is explained in a comment just above its statement.
    lines = text.splitlines()
    bad = []
    for i, line in enumerate(lines):
        if not re.match(r'^\s*Resource:\s*"\*"\s*$', line):
            continue
        j = i
        while j > 0 and not re.match(r"^\s*- (Sid|Effect):", lines[j]):
            j -= 1
        k = j - 1
        comments = []
        while k >= 0 and lines[k].lstrip().startswith("#"):
            comments.append(lines[k])
            k -= 1
        comments += [ln for ln in lines[j:i] if ln.lstrip().startswith("#")]
        if not any(re.search(r'resource-level|"\*" means', ln, re.I) for ln in comments):
            bad.append(f"line {i + 1}")
    c.check(
        not bad,
        'every Resource "*" has a comment saying why (no resource-level permissions)',
        ", ".join(bad),
    )


def check_deployed_iam(c: Checks, path: Path, template: dict[str, Any]) -> None:
    """After SAM's transform: every role of the stack (the functions' and the ones SAM
    makes for the schedules) without wildcard actions or managed policies."""
    out, err = sam_transform(path, template)
    if not c.check(out is not None, "SAM's transform of the template succeeds", err):
        return
    assert out is not None
    bad = []
    roles = 0
    for rid, r in out.get("Resources", {}).items():
        if r.get("Type") not in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        roles += 1
        props = r.get("Properties", {})
        if props.get("ManagedPolicyArns"):
            bad.append(f"{rid}: managed policies {plain(props['ManagedPolicyArns'])}")
        docs = [p.get("PolicyDocument", {}) for p in as_list(props.get("Policies"))]
        if "PolicyDocument" in props:
            docs.append(props["PolicyDocument"])
        for d in docs:
            for s in statements(d):
                for a in as_list(s.get("Action")):
                    if not isinstance(a, str) or "*" in a:
                        bad.append(f"{rid}: action {a}")
                for k in ("NotAction", "NotResource"):
                    if k in s:
                        bad.append(f"{rid}: {k}")
                if (
                    "*" in as_list(s.get("Resource"))
                    and not set(as_list(s.get("Action"))) <= STAR_ONLY_ACTIONS
                ):
                    bad.append(f"{rid}: Resource * for {as_list(s.get('Action'))}")
    c.check(
        not bad and roles > 0,
        f"as deployed (after SAM's transform), none of the {roles} IAM roles / policies has a wildcard action, "
        'a managed policy, or Resource "*" outside the allow-list',
        "; ".join(bad),
    )


# ---------------------------------------------------------------------------
# Functions, alarms, encryption
# ---------------------------------------------------------------------------
def check_functions(c: Checks, template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for fn, (_, must_be_one) in FUNCTIONS.items():
        if not must_be_one or fn not in resources:
            continue
        rc = resources[fn].get("Properties", {}).get("ReservedConcurrentExecutions")
        c.check(
            rc == 1,
            f"{fn}: ReservedConcurrentExecutions is 1 (one change at a time)",
            f"found {rc!r}",
        )


def check_globals(c: Checks, template: dict[str, Any]) -> None:
    """Globals.Function carries what the three functions share; no function sets
    the same-for-all properties or a shared variable again."""
    resources = template["Resources"]
    g = (template.get("Globals") or {}).get("Function") or {}
    bad = []
    for k, want in GLOBAL_FUNCTION_PROPERTIES.items():
        if k not in g:
            bad.append(f"{k} missing")
        elif want is not None and plain(g[k]) != want:
            bad.append(f"{k} is {json.dumps(plain(g[k]))}, not {json.dumps(want)}")
    variables = ((g.get("Environment") or {}).get("Variables")) or {}
    bad += [f"variable {v} missing" for v in SHARED_VARIABLES if v not in variables]
    c.check(
        not bad,
        f"Globals.Function carries the shared settings ({', '.join(GLOBAL_FUNCTION_PROPERTIES)}) "
        f"and variables ({', '.join(SHARED_VARIABLES)})",
        "; ".join(bad),
    )
    for fn in FUNCTIONS:
        props = resources.get(fn, {}).get("Properties", {})
        fn_vars = ((props.get("Environment") or {}).get("Variables")) or {}
        again = [k for k in SAME_FOR_ALL if k in props]
        again += [f"variable {v}" for v in SHARED_VARIABLES if v in fn_vars]
        c.check(
            not again,
            f"{fn}: does not set again what Globals shares (same for all: {', '.join(SAME_FOR_ALL)}; "
            "the shared variables)",
            ", ".join(again),
        )


def check_log_groups(c: Checks, template: dict[str, Any]) -> None:
    """Each function logs to a log group of this template, /aws/lambda/<FunctionName>,
    with a retention CloudWatch accepts and the stack's key."""
    resources = template["Resources"]
    params = template.get("Parameters", {})
    key_stmts = statements(
        resources.get(KEY, {}).get("Properties", {}).get("KeyPolicy") or {}
    )
    logs_key_arns: list[Any] = []
    for st in key_stmts:
        principal = plain(st.get("Principal"))
        if principal == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}:
            cond = plain(st.get("Condition", {}))
            for op in ("ArnEquals", "ArnLike"):
                logs_key_arns += as_list(cond.get(op, {}).get("kms:EncryptionContext:aws:logs:arn"))
    groups_seen: set[str] = set()
    for fn, (short, _) in FUNCTIONS.items():
        if fn not in resources:
            continue
        props = resources[fn].get("Properties", {})
        group = function_log_group(template, fn)
        if not c.check(
            group is not None,
            f"{fn}: logs to a log group of this template (LoggingConfig.LogGroup: !Ref <AWS::Logs::LogGroup>)",
            "otherwise Lambda creates /aws/lambda/<name> itself, and it never expires",
        ):
            continue
        assert group is not None
        groups_seen.add(group)
        gp = resources[group].get("Properties", {})
        name = f"/aws/lambda/menotime-${{Environment}}-{short}"
        c.check(
            plain(gp.get("LogGroupName")) == {"Fn::Sub": name}
            and plain(props.get("FunctionName")) == {"Fn::Sub": f"menotime-${{Environment}}-{short}"},
            f"{group}: named /aws/lambda/<FunctionName of {fn}> ({name})",
            f"LogGroupName {json.dumps(plain(gp.get('LogGroupName')))}",
        )
        retention = plain(gp.get("RetentionInDays"))
        rp = params.get(retention.get("Ref"), {}) if isinstance(retention, dict) else {}
        allowed = [int(v) for v in as_list(rp.get("AllowedValues"))]
        c.check(
            bool(rp)
            and bool(allowed)
            and set(allowed) <= CLOUDWATCH_RETENTION_DAYS
            and int(rp.get("Default", -1)) in allowed,
            f"{group}: RetentionInDays from a parameter whose AllowedValues (and Default) CloudWatch accepts",
            f"RetentionInDays {json.dumps(retention)}, AllowedValues {allowed}, "
            f"not accepted {sorted(set(allowed) - CLOUDWATCH_RETENTION_DAYS)}",
        )
        c.check(
            plain(gp.get("KmsKeyId")) == getatt(KEY, "Arn"),
            f"{group}: encrypted with {KEY} (KmsKeyId)",
            f"KmsKeyId {json.dumps(plain(gp.get('KmsKeyId')))}",
        )
        arn = {
            "Fn::Sub": f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{name}"
        }
        c.check(
            arn in [plain(a) for a in logs_key_arns],
            f"{KEY}: its policy lets CloudWatch Logs use it for {group} (kms:EncryptionContext:aws:logs:arn)",
            f"the logs statement names {json.dumps(plain(logs_key_arns))}",
        )
    bad = [
        k
        for k, v in resources.items()
        if v.get("Type") == "AWS::Logs::LogGroup" and k not in groups_seen
    ]
    c.check(not bad, "every log group of the template is a function's", ", ".join(bad))
    # The key serves exactly the functions' groups, no pattern.
    c.check(
        all(isinstance(plain(a), dict) and "*" not in (sub_text(a) or "*") for a in logs_key_arns)
        and len(logs_key_arns) == len(FUNCTIONS),
        f"{KEY}: CloudWatch Logs may use it for the {len(FUNCTIONS)} function log groups only (no wildcard)",
        json.dumps(plain(logs_key_arns)),
    )


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: v.get("Properties", {})
        for k, v in template["Resources"].items()
        if v.get("Type") == "AWS::CloudWatch::Alarm"
    }


def notifies_alarm_topic(props: dict[str, Any]) -> bool:
    return ref(ALARM_TOPIC) in [plain(a) for a in as_list(props.get("AlarmActions"))]


def alarms_on(
    all_alarms: dict[str, dict[str, Any]], namespace: str, metric: str, dims: list[dict[str, Any]]
) -> list[str]:
    """The alarms on exactly this metric (dimensions in any order) notifying AlarmTopic."""

    def key(d: dict[str, Any]) -> str:
        return json.dumps(d, sort_keys=True)

    want = sorted(key(d) for d in dims)
    return [
        k
        for k, p in all_alarms.items()
        if p.get("Namespace") == namespace
        and p.get("MetricName") == metric
        and sorted(key(plain(d)) for d in as_list(p.get("Dimensions"))) == want
        and notifies_alarm_topic(p)
    ]


def check_alarms(c: Checks, template: dict[str, Any]) -> None:
    resources = template["Resources"]
    all_alarms = alarms(template)
    for fn in FUNCTIONS:
        for metric in FUNCTION_ALARM_METRICS:
            found = alarms_on(
                all_alarms, "AWS/Lambda", metric, [{"Name": "FunctionName", "Value": ref(fn)}]
            )
            c.check(
                bool(found),
                f"{fn}: an AWS/Lambda {metric} alarm notifies {ALARM_TOPIC}",
                "none found",
            )

    # Every EventBridge rule: FailedInvocations, named as AWS publishes it (RuleName on
    # the default bus; EventBusName and RuleName on a custom bus).
    rules = 0
    for fn in FUNCTIONS:
        for name, e in resources.get(fn, {}).get("Properties", {}).get("Events", {}).items():
            if e.get("Type") != "EventBridgeRule":
                continue
            rules += 1
            props = e.get("Properties", {})
            dims = [{"Name": "RuleName", "Value": plain(props.get("RuleName"))}]
            if "EventBusName" in props:
                dims.append({"Name": "EventBusName", "Value": plain(props["EventBusName"])})
            found = alarms_on(all_alarms, "AWS/Events", "FailedInvocations", dims)
            c.check(
                bool(found) and props.get("RuleName") is not None,
                f"{fn}.{name}: an AWS/Events FailedInvocations alarm on its rule "
                f"({'EventBusName and RuleName' if len(dims) > 1 else 'RuleName'}) notifies {ALARM_TOPIC}",
                f"none with dimensions {json.dumps(dims)}",
            )
    c.check(rules > 0, f"the template has EventBridge rules ({rules})")

    # Every Scheduler schedule: in a schedule group of its own (the scheduler's
    # metrics exist per group), with alarms on that group.
    schedules = 0
    groups_used: dict[str, str] = {}
    for fn in FUNCTIONS:
        for name, e in resources.get(fn, {}).get("Properties", {}).get("Events", {}).items():
            if e.get("Type") not in ("ScheduleV2",):
                continue
            schedules += 1
            g = plain(e.get("Properties", {}).get("GroupName"))
            group = g.get("Ref") if isinstance(g, dict) else None
            ok = (
                isinstance(group, str)
                and resources.get(group, {}).get("Type") == "AWS::Scheduler::ScheduleGroup"
                and group not in groups_used
            )
            c.check(
                ok,
                f"{fn}.{name}: in a schedule group of its own (GroupName: !Ref <AWS::Scheduler::ScheduleGroup>)",
                f"GroupName {json.dumps(g)}"
                + (f", shared with {groups_used[group]}" if isinstance(group, str) and group in groups_used else "")
                + " (in the default group the metrics of every schedule of the account mix)",
            )
            if not ok:
                continue
            assert isinstance(group, str)
            groups_used[group] = f"{fn}.{name}"
            for metric in SCHEDULE_ALARM_METRICS:
                found = alarms_on(
                    all_alarms, "AWS/Scheduler", metric, [{"Name": "ScheduleGroup", "Value": ref(group)}]
                )
                c.check(
                    bool(found),
                    f"{fn}.{name}: an AWS/Scheduler {metric} alarm on its group {group} notifies {ALARM_TOPIC}",
                    "none found",
                )
    c.check(schedules > 0, f"the template has Scheduler schedules ({schedules})")

    bad = [
        k
        for k, p in all_alarms.items()
        if p.get("TreatMissingData") != "notBreaching" or not p.get("AlarmDescription")
    ]
    c.check(
        not bad,
        "every alarm says what it means (AlarmDescription) and treats missing data as notBreaching",
        ", ".join(bad),
    )

    # Every queue used as a dead-letter queue or failure destination has a depth alarm.
    dlqs: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("DeadLetterConfig", "OnFailure", "DeadLetterQueue"):
                    for key in ("Arn", "Destination", "TargetArn"):
                        t = plain(v.get(key)) if isinstance(v, dict) else None
                        if isinstance(t, dict) and "Fn::GetAtt" in t:
                            dlqs.add(t["Fn::GetAtt"][0])
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(resources)
    c.check(bool(dlqs), f"the template has dead-letter queues ({sorted(dlqs)})")
    for q in sorted(dlqs):
        found = [
            k
            for k, p in all_alarms.items()
            if p.get("Namespace") == "AWS/SQS"
            and p.get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and [plain(d) for d in as_list(p.get("Dimensions"))]
            == [{"Name": "QueueName", "Value": getatt(q, "QueueName")}]
            and p.get("Threshold") == 0
            and notifies_alarm_topic(p)
        ]
        c.check(
            bool(found),
            f"dead-letter queue {q}: a depth alarm (messages visible > 0) notifies {ALARM_TOPIC}",
            "none found",
        )

    bad = [
        k
        for k, p in all_alarms.items()
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions")
        for a in as_list(p.get(key))
        if plain(a) != ref(ALARM_TOPIC)
    ]
    c.check(
        not bad,
        f"alarms notify {ALARM_TOPIC} only, never the contract topics {CONTRACT_TOPICS}",
        ", ".join(bad),
    )
    subs = [
        v.get("Properties", {})
        for v in resources.values()
        if v.get("Type") == "AWS::SNS::Subscription"
    ]
    c.check(
        any(
            plain(s.get("TopicArn")) == ref(ALARM_TOPIC)
            and s.get("Protocol") == "email"
            and plain(s.get("Endpoint")) == ref("OncallEmail")
            for s in subs
        ),
        f"on-call (OncallEmail) is subscribed to {ALARM_TOPIC} by e-mail",
    )


def check_service_alarms(c: Checks, template: dict[str, Any]) -> None:
    """The post-deployment watch: the service's five alarms, and the rules that bring
    their state changes, and the task stops, to deploy-notifier."""
    resources = template["Resources"]
    conditions = template.get("Conditions", {})
    params = template.get("Parameters", {})
    for rid, (what, condition) in SERVICE_ALARMS.items():
        r = resources.get(rid, {})
        p = r.get("Properties", {})
        bad = []
        if r.get("Type") != "AWS::CloudWatch::Alarm":
            bad.append("missing")
        else:
            if plain(p.get("AlarmName")) != alarm_name(what):
                bad.append(f"AlarmName {json.dumps(plain(p.get('AlarmName')))}")
            if r.get("Condition") != condition:
                bad.append(f"Condition {r.get('Condition')!r}, not {condition!r}")
            if condition and plain(conditions.get(condition)) != SERVICE_ALARM_CONDITIONS[condition]:
                bad.append(f"condition {condition} is {json.dumps(plain(conditions.get(condition)))}")
            actions = [k for k in ("AlarmActions", "OKActions", "InsufficientDataActions") if p.get(k)]
            if actions:
                bad.append(f"has {actions} (deploy-notifier, through the Alarms rule, is its reader)")
        c.check(
            not bad,
            f"{rid}: named <AlarmPrefix>{what}, created "
            + (f"only when {condition}" if condition else "always")
            + ", no actions",
            "; ".join(bad),
        )
    memory = resources.get("ServiceMemoryHighAlarm", {}).get("Properties", {})
    threshold = plain(memory.get("Threshold"))
    default = (
        params.get(threshold.get("Ref"), {}).get("Default") if isinstance(threshold, dict) else threshold
    )
    c.check(
        str(default) == str(MANUAL_MEMORY_PERCENT)
        and memory.get("ComparisonOperator") == "GreaterThanThreshold"
        and memory.get("MetricName") == "MemoryUtilization",
        f"ServiceMemoryHighAlarm: MemoryUtilization above the manual's {MANUAL_MEMORY_PERCENT}% by default",
        f"Threshold {json.dumps(threshold)} (default {default!r})",
    )

    events = resources.get(ALARMS_FUNCTION, {}).get("Properties", {}).get("Events", {})
    rule = events.get(ALARMS_EVENT, {})
    pattern = plain(rule.get("Properties", {}).get("Pattern", {}))
    names = pattern.get("detail", {}).get("alarmName")
    want = [alarm_name(what) for what, _ in SERVICE_ALARMS.values()]
    c.check(
        rule.get("Type") == "EventBridgeRule"
        and pattern.get("source") == ["aws.cloudwatch"]
        and pattern.get("detail-type") == ["CloudWatch Alarm State Change"]
        and isinstance(names, list)
        and sorted(json.dumps(n, sort_keys=True) for n in names)
        == sorted(json.dumps(n, sort_keys=True) for n in want),
        f"{ALARMS_FUNCTION}.{ALARMS_EVENT}: the alarm state changes of exactly the five service alarms, "
        "by name (a prefix would also match the automation's own alarms)",
        f"pattern {json.dumps(pattern)}",
    )
    tasks = plain(events.get(TASKS_EVENT, {}).get("Properties", {}).get("Pattern", {}))
    detail = tasks.get("detail", {})
    ors = detail.get("$or", [])
    stop_codes = sorted(code for o in ors for code in o.get("stopCode", []))
    oom = [o for o in ors if o.get("containers", {}).get("reason") == [{"prefix": "OutOfMemoryError"}]]
    c.check(
        detail.get("lastStatus") == ["STOPPED"]
        and bool(detail.get("group"))
        and stop_codes == ["SpotInterruption", "TaskFailedToStart"]
        and len(oom) == 1
        and len(ors) == 2,
        f"{ALARMS_FUNCTION}.{TASKS_EVENT}: STOPPED tasks of the service that were OOM-killed, failed to start "
        "or were Spot-interrupted, and no other stop",
        f"pattern {json.dumps(tasks)}",
    )


def check_encryption(c: Checks, template: dict[str, Any]) -> None:
    resources = template["Resources"]
    keys = {k for k, v in resources.items() if v.get("Type") == "AWS::KMS::Key"}
    for k in sorted(keys):
        c.check(
            resources[k]["Properties"].get("EnableKeyRotation") is True,
            f"KMS key {k}: rotation enabled",
        )
    topics = [k for k, v in resources.items() if v.get("Type") == "AWS::SNS::Topic"]
    c.check(bool(topics), f"the template has SNS topics ({topics})")
    for t in topics:
        kid = plain(resources[t].get("Properties", {}).get("KmsMasterKeyId"))
        ok = isinstance(kid, dict) and (
            kid.get("Fn::GetAtt", [None])[0] in keys or kid.get("Ref") in keys
        )
        c.check(
            ok,
            f"SNS topic {t}: encrypted with the stack's KMS key",
            f"KmsMasterKeyId {json.dumps(kid)}",
        )
    queues = [k for k, v in resources.items() if v.get("Type") == "AWS::SQS::Queue"]
    c.check(bool(queues), f"the template has SQS queues ({queues})")
    for q in queues:
        p = resources[q].get("Properties", {})
        c.check(
            p.get("SqsManagedSseEnabled") is True or bool(p.get("KmsMasterKeyId")),
            f"SQS queue {q}: encrypted at rest (SSE-SQS or KMS)",
        )


# ---------------------------------------------------------------------------
# Approvals
# ---------------------------------------------------------------------------
def check_approvals(c: Checks, template: dict[str, Any]) -> None:
    resources = template["Resources"]
    params = template.get("Parameters", {})
    for name in ROLE_NAME_PARAMETERS:
        p = params.get(name, {})
        pattern = str(p.get("AllowedPattern", ""))
        try:
            accepts = lambda v: re.fullmatch(pattern, v) is not None  # noqa: E731
            ok = (
                p.get("Type") == "String"
                and bool(pattern)
                and accepts("menotime-operators")
                and accepts("ops/menotime-operators")
                and not accepts("arn:aws:iam::123456789012:role/menotime-operators")
                and not accepts("")
            )
        except re.error:
            ok = False
        c.check(
            ok,
            f"parameter {name}: an IAM role name, with an optional path, never an ARN (AllowedPattern)",
            f"AllowedPattern {pattern!r}",
        )
    buses = {
        k: v.get("Properties", {})
        for k, v in resources.items()
        if v.get("Type") == "AWS::Events::EventBus"
        and sub_text(v.get("Properties", {}).get("Name")) == APPROVAL_BUS_NAME
    }
    if not c.check(
        len(buses) == 1,
        f"one AWS::Events::EventBus named {APPROVAL_BUS_NAME}",
        f"found {sorted(buses)}",
    ):
        return
    ((bus_id, bus),) = buses.items()
    bus_arn = f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:event-bus/{APPROVAL_BUS_NAME}"

    # The bus's policy, whether in its Policy property or in EventBusPolicy resources.
    stmts: list[dict[str, Any]] = list(statements(bus.get("Policy") or {}))
    for k, v in resources.items():
        if v.get("Type") == "AWS::Events::EventBusPolicy":
            vp = v.get("Properties", {})
            if plain(vp.get("EventBusName")) in (ref(bus_id), {"Fn::Sub": APPROVAL_BUS_NAME}):
                if "Statement" in vp:
                    stmts.append(vp["Statement"])
                else:  # legacy form: Action / Principal / Condition
                    stmts.append(
                        {
                            "Effect": "Allow",
                            "Action": vp.get("Action"),
                            "Principal": {"AWS": vp.get("Principal")},
                            "Condition": vp.get("Condition"),
                        }
                    )
    operators = role_arn(OPERATORS_PARAMETER)
    allows = [s for s in stmts if s.get("Effect") == "Allow"]
    denies = [s for s in stmts if s.get("Effect") == "Deny"]
    c.check(
        bool(allows)
        and all(
            plain(s.get("Principal")) in ({"AWS": operators}, {"AWS": [operators]})
            and as_list(s.get("Action")) == ["events:PutEvents"]
            and [sub_text(r) for r in as_list(s.get("Resource"))] == [bus_arn]
            for s in allows
        ),
        f"{bus_id}: its policy allows events:PutEvents to {OPERATORS_PARAMETER} and to nobody else",
        json.dumps(plain(allows)),
    )
    c.check(
        any(
            plain(s.get("Principal")) in ("*", {"AWS": "*"})
            and "events:PutEvents" in as_list(s.get("Action"))
            and [sub_text(r) for r in as_list(s.get("Resource"))] == [bus_arn]
            and plain(s.get("Condition")) == {"ArnNotEquals": {"aws:PrincipalArn": operators}}
            for s in denies
        ),
        f"{bus_id}: its policy denies events:PutEvents to every principal but {OPERATORS_PARAMETER} "
        "(same-account IAM allows would otherwise still approve)",
        json.dumps(plain(denies)),
    )

    events = resources.get(APPROVAL_FUNCTION, {}).get("Properties", {}).get("Events", {})
    approval = events.get(APPROVAL_EVENT, {})
    ap = approval.get("Properties", {})
    c.check(
        approval.get("Type") == "EventBridgeRule" and plain(ap.get("EventBusName")) == ref(bus_id),
        f"{APPROVAL_FUNCTION}.{APPROVAL_EVENT}: the approval rule is on {bus_id}",
        f"EventBusName {json.dumps(plain(ap.get('EventBusName')))}",
    )
    others = [
        f"{fn}.{name}"
        for fn in FUNCTIONS
        for name, e in resources.get(fn, {}).get("Properties", {}).get("Events", {}).items()
        if e.get("Type") == "EventBridgeRule"
        and (fn, name) != (APPROVAL_FUNCTION, APPROVAL_EVENT)
        and "EventBusName" in e.get("Properties", {})
    ]
    c.check(
        not others,
        "the AWS service rules stay on the default bus (where AWS sends its events)",
        ", ".join(others),
    )
    env = (
        resources.get(APPROVAL_FUNCTION, {})
        .get("Properties", {})
        .get("Environment", {})
        .get("Variables", {})
    )
    c.check(
        plain(env.get("APPROVAL_EVENT_BUS")) == ref(bus_id),
        f"{APPROVAL_FUNCTION}: APPROVAL_EVENT_BUS is {bus_id} (the approval command targets it)",
        json.dumps(plain(env.get("APPROVAL_EVENT_BUS"))),
    )

    # The failure queue's policy must name each rule with a DLQ by its real ARN.
    expected = set()
    for fn in FUNCTIONS:
        for name, e in resources.get(fn, {}).get("Properties", {}).get("Events", {}).items():
            if e.get("Type") != "EventBridgeRule" or "DeadLetterConfig" not in e.get(
                "Properties", {}
            ):
                continue
            props = e["Properties"]
            rule = sub_text(props.get("RuleName"))
            if rule is None:
                c.check(
                    False,
                    f"{fn}.{name}: has a fixed RuleName (its ARN is named in the queue policy)",
                )
                continue
            bus_part = ""
            if "EventBusName" in props:
                b = plain(props["EventBusName"])
                bus_res = resources.get(b.get("Ref"), {}) if isinstance(b, dict) else {}
                bus_part = (sub_text(bus_res.get("Properties", {}).get("Name")) or "?") + "/"
            expected.add(
                f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{bus_part}{rule}"
            )
    listed: set[str] = set()
    for v in resources.values():
        if v.get("Type") != "AWS::SQS::QueuePolicy":
            continue
        for s in statements(v.get("Properties", {}).get("PolicyDocument", {})):
            arns = plain(s.get("Condition", {})).get("ArnEquals", {}).get("aws:SourceArn", [])
            listed |= {sub_text(a) for a in as_list(arns) if sub_text(a)}
    c.check(
        expected == listed and bool(expected),
        "the failure queue's policy names exactly the rules that dead-letter to it, by their ARNs "
        "(rule/<bus>/<name> on the approvals bus)",
        f"missing {sorted(expected - listed)}, extra {sorted(listed - expected)}",
    )


# ---------------------------------------------------------------------------
# samconfig.toml
# ---------------------------------------------------------------------------
def parameter_overrides(value: Any) -> dict[str, str] | None:
    """samconfig's parameter_overrides (Key="value" Key2="value2", or a list of
    such strings) as a dict; None if it does not parse."""
    items: list[str] = []
    try:
        for v in as_list(value):
            items += shlex.split(str(v))
    except ValueError:
        return None
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep:
            return None
        out[k] = v
    return out


def check_samconfig(c: Checks, template: dict[str, Any], samconfig_text: str | None) -> None:
    if not c.check(samconfig_text is not None, "samconfig.toml exists next to the template"):
        return
    assert samconfig_text is not None
    c.check(
        "ACCOUNT_ID" not in samconfig_text,
        "samconfig.toml has no ACCOUNT_ID placeholder (the template builds the role ARNs)",
        "ACCOUNT_ID found",
    )
    try:
        cfg = tomllib.loads(samconfig_text)
    except tomllib.TOMLDecodeError as e:
        c.check(False, "samconfig.toml parses", str(e))
        return
    params = template.get("Parameters", {})
    required = {k for k, v in params.items() if "Default" not in v}
    build = cfg.get("default", {}).get("build", {}).get("parameters", {})
    c.check(
        build.get("parallel") is False,
        "samconfig.toml: sam build builds the functions one at a time (parallel = false: "
        "parallel cargo lambda builds race to install the aarch64 target on a fresh machine)",
        f"parallel = {build.get('parallel')!r}",
    )
    for env in SAMCONFIG_ENVIRONMENTS:
        sections = {
            cmd: cfg.get(env, {}).get(cmd, {}).get("parameters") for cmd in ("deploy", "sync")
        }
        for cmd, sec in sections.items():
            if not c.check(
                isinstance(sec, dict),
                f"samconfig.toml: [{env}.{cmd}.parameters] exists (sam {cmd} --config-env {env} does not prompt)",
            ):
                continue
            assert isinstance(sec, dict)
            overrides = parameter_overrides(sec.get("parameter_overrides"))
            if not c.check(
                overrides is not None,
                f"samconfig.toml: [{env}.{cmd}.parameters] parameter_overrides parse",
                repr(sec.get("parameter_overrides")),
            ):
                continue
            assert overrides is not None
            bad = [f"{k} missing" for k in sorted(required - set(overrides))]
            bad += [f"{k} is no parameter of the template" for k in sorted(set(overrides) - set(params))]
            if overrides.get("Environment") != env:
                bad.append(f"Environment={overrides.get('Environment')!r}")
            for k in ROLE_NAME_PARAMETERS:
                pattern = str(params.get(k, {}).get("AllowedPattern", ""))
                if k in overrides and pattern and not re.fullmatch(pattern, overrides[k]):
                    bad.append(f"{k}={overrides[k]!r} does not match the template's AllowedPattern")
            missing = [k for k in ("stack_name", "region", "capabilities") if not sec.get(k)]
            bad += [f"{k} missing" for k in missing]
            c.check(
                not bad,
                f"samconfig.toml: [{env}.{cmd}.parameters] sets every parameter without a default, "
                "only template parameters, role names that the template accepts, stack, region, capabilities",
                "; ".join(bad),
            )
        deploy, sync = sections["deploy"], sections["sync"]
        if isinstance(deploy, dict) and isinstance(sync, dict):
            differ = [
                k
                for k in ("stack_name", "region", "capabilities", "s3_prefix", "tags")
                if deploy.get(k) != sync.get(k)
            ]
            if parameter_overrides(deploy.get("parameter_overrides")) != parameter_overrides(
                sync.get("parameter_overrides")
            ):
                differ.append("parameter_overrides")
            c.check(
                not differ,
                f"samconfig.toml: {env}'s sync section targets the same stack with the same parameters as its deploy section",
                f"differ: {', '.join(differ)}",
            )
    prod = cfg.get("prod", {}).get("deploy", {}).get("parameters", {})
    c.check(
        prod.get("confirm_changeset") is True,
        "samconfig.toml: prod's deploy shows its change set for confirmation (confirm_changeset = true)",
        f"confirm_changeset = {prod.get('confirm_changeset')!r}",
    )


def run(
    path: Path, template: dict[str, Any], text: str, samconfig_text: str | None = None
) -> Checks:
    c = Checks()
    check_iam(c, template, text)
    check_deployed_iam(c, path, template)
    check_functions(c, template)
    check_globals(c, template)
    check_log_groups(c, template)
    check_alarms(c, template)
    check_service_alarms(c, template)
    check_encryption(c, template)
    check_approvals(c, template)
    check_samconfig(c, template, samconfig_text)
    return c


# ---------------------------------------------------------------------------
# Self-test: each rule above, broken on purpose, must produce a FAIL
# ---------------------------------------------------------------------------
def role_statement(t: dict[str, Any], role: str, action: str) -> dict[str, Any]:
    for p in t["Resources"][role]["Properties"]["Policies"]:
        for s in statements(p["PolicyDocument"]):
            if action in as_list(s.get("Action")):
                return s
    raise KeyError(f"{role}: no statement with {action}")


def sid_statement(t: dict[str, Any], role: str, sid: str) -> dict[str, Any]:
    for p in t["Resources"][role]["Properties"]["Policies"]:
        for s in statements(p["PolicyDocument"]):
            if s.get("Sid") == sid:
                return s
    raise KeyError(f"{role}: no statement {sid}")


def bus_statements(t: dict[str, Any]) -> list[dict[str, Any]]:
    return t["Resources"]["ApprovalBus"]["Properties"]["Policy"]["Statement"]


def set_item(d: dict[str, Any], key: str, value: Any) -> None:
    d[key] = value


def props(t: dict[str, Any], resource: str) -> dict[str, Any]:
    return t["Resources"][resource]["Properties"]


def event(t: dict[str, Any], fn: str, name: str) -> dict[str, Any]:
    return props(t, fn)["Events"][name]["Properties"]


def logs_key_statement(t: dict[str, Any]) -> dict[str, Any]:
    for s in statements(props(t, KEY)["KeyPolicy"]):
        if "logs." in json.dumps(s.get("Principal")):
            return s
    raise KeyError("no key policy statement for CloudWatch Logs")


class SamconfigEdit:
    """A mutation of samconfig.toml's text rather than of the template."""

    def __init__(self, edit: Callable[[str], str]) -> None:
        self.edit = edit


def in_section(header: str, old: str, new: str) -> SamconfigEdit:
    """Replace `old` by `new` in one [section] of samconfig.toml only."""

    def edit(text: str) -> str:
        start = text.index(f"[{header}]")
        end = text.find("\n[", start + 1)
        end = len(text) if end < 0 else end
        section = text[start:end]
        if old not in section:
            raise ValueError(f"{old!r} not in [{header}]")
        return text[:start] + section.replace(old, new) + text[end:]

    return SamconfigEdit(edit)


def without_section(header: str) -> SamconfigEdit:
    def edit(text: str) -> str:
        start = text.index(f"[{header}]")
        end = text.find("\n[", start + 1)
        return text[:start] + ("" if end < 0 else text[end + 1 :])

    return SamconfigEdit(edit)


Mutation = Callable[[dict[str, Any]], Any] | SamconfigEdit | str
MUTATIONS: list[tuple[str, Mutation, str]] = [
    # (what is broken, how, a text the FAIL line must contain)
    (
        "the iam:PassedToService condition deleted",
        lambda t: role_statement(t, "ScanGateRole", "iam:PassRole").pop("Condition"),
        "iam:PassedToService",
    ),
    (
        "iam:PassRole on Resource *",
        lambda t: set_item(role_statement(t, "ScanGateRole", "iam:PassRole"), "Resource", "*"),
        "iam:PassRole",
    ),
    (
        "a wildcard action (kms:GenerateDataKey*)",
        lambda t: set_item(
            role_statement(t, "DeployNotifierRole", "kms:Decrypt"),
            "Action",
            ["kms:GenerateDataKey*", "kms:Decrypt"],
        ),
        "no wildcard action",
    ),
    (
        "sns:Publish on Resource *",
        lambda t: set_item(role_statement(t, "OffhoursScalerRole", "sns:Publish"), "Resource", "*"),
        "sns:Publish",
    ),
    (
        "ecs:UpdateService on every service",
        lambda t: set_item(
            role_statement(t, "ScanGateRole", "ecs:UpdateService"),
            "Resource",
            {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/*"},
        ),
        "ECS service actions",
    ),
    (
        "the tag-key condition of the snapshot tag dropped",
        lambda t: role_statement(t, "OffhoursScalerRole", "ecs:UntagResource").pop("Condition"),
        "aws:TagKeys",
    ),
    (
        "the tag-key condition of scan-gate's deployed mark dropped",
        lambda t: sid_statement(t, "ScanGateRole", "MarkDeployedRevisions").pop("Condition"),
        "tags task definitions without",
    ),
    (
        "the deployed mark allowed to write any tag key",
        lambda t: set_item(
            sid_statement(t, "ScanGateRole", "MarkDeployedRevisions"),
            "Condition",
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["menotime:deployed", "owner"]}},
        ),
        "tags task definitions without",
    ),
    (
        "the tag-key condition of scan-gate's deferral dropped",
        lambda t: sid_statement(t, "ScanGateRole", "TagTheServiceWithTheDeferredImage").pop(
            "Condition"
        ),
        "aws:TagKeys",
    ),
    (
        "deploy-notifier without reserved concurrency",
        lambda t: t["Resources"]["DeployNotifierFunction"]["Properties"].pop(
            "ReservedConcurrentExecutions"
        ),
        "DeployNotifierFunction: ReservedConcurrentExecutions",
    ),
    (
        "an action the script does not know (s3:GetObject added)",
        lambda t: role_statement(t, "ScanGateRole", "ecr:DescribeImageScanFindings").__setitem__(
            "Action", ["ecr:DescribeImageScanFindings", "s3:GetObject"]
        ),
        "KNOWN_ACTIONS",
    ),
    (
        "ecr:DescribeImageScanFindings on every repository",
        lambda t: set_item(
            role_statement(t, "ScanGateRole", "ecr:DescribeImageScanFindings"),
            "Resource",
            {"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"},
        ),
        "ECR only",
    ),
    (
        "logs on the whole account",
        lambda t: set_item(
            role_statement(t, "DeployNotifierRole", "logs:PutLogEvents"),
            "Resource",
            {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"},
        ),
        "logs only",
    ),
    (
        "scan-gate back on SAM's role (AWSLambdaBasicExecutionRole)",
        lambda t: t["Resources"]["ScanGateFunction"]["Properties"].pop("Role"),
        "execution role of this template",
    ),
    (
        'a Resource "*" without its comment',
        "text",  # handled in self_test: comment lines about resource-level permissions removed
        'every Resource "*" has a comment',
    ),
    (
        "offhours-scaler without reserved concurrency",
        lambda t: t["Resources"]["OffhoursScalerFunction"]["Properties"].pop(
            "ReservedConcurrentExecutions"
        ),
        "ReservedConcurrentExecutions",
    ),
    (
        "deploy-notifier's Errors alarm deleted",
        lambda t: t["Resources"].pop("DeployNotifierErrorsAlarm"),
        "DeployNotifierFunction: an AWS/Lambda Errors alarm",
    ),
    (
        "the failure-queue depth alarm sent to the notify topic",
        lambda t: set_item(
            t["Resources"]["FailureQueueAlarm"]["Properties"], "AlarmActions", [ref("NotifyTopic")]
        ),
        "never the contract topics",
    ),
    (
        "the on-call topic unencrypted",
        lambda t: t["Resources"]["OncallTopic"]["Properties"].pop("KmsMasterKeyId"),
        "SNS topic OncallTopic",
    ),
    (
        "the failure queue unencrypted",
        lambda t: t["Resources"]["FailureQueue"]["Properties"].pop("SqsManagedSseEnabled"),
        "SQS queue FailureQueue",
    ),
    (
        "the approval rule back on the default bus",
        lambda t: t["Resources"]["ScanGateFunction"]["Properties"]["Events"]["Approval"][
            "Properties"
        ].pop("EventBusName"),
        "the approval rule is on",
    ),
    (
        "the bus policy's Deny deleted",
        lambda t: bus_statements(t).pop([s["Effect"] for s in bus_statements(t)].index("Deny")),
        "denies events:PutEvents",
    ),
    (
        "the bus policy allowing the whole account",
        lambda t: set_item(
            bus_statements(t)[[s["Effect"] for s in bus_statements(t)].index("Allow")],
            "Principal",
            {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
        ),
        "allows events:PutEvents to OperatorsRoleName",
    ),
    (
        "OperatorsRoleName accepting an ARN",
        lambda t: set_item(t["Parameters"]["OperatorsRoleName"], "AllowedPattern", "^.+$"),
        "never an ARN",
    ),
    (
        "the failure-queue policy naming the approval rule as if on the default bus",
        lambda t: t["Resources"]["FailureQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][
            0
        ]["Condition"]["ArnEquals"]["aws:SourceArn"].__setitem__(
            2,
            {
                "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/menotime-${Environment}-scan-gate-approval"
            },
        ),
        "the failure queue's policy",
    ),
    # Globals
    (
        "Globals without Runtime",
        lambda t: t["Globals"]["Function"].pop("Runtime"),
        "Globals.Function carries the shared settings",
    ),
    (
        "deploy-notifier setting CLUSTER_NAME again",
        lambda t: set_item(
            props(t, "DeployNotifierFunction")["Environment"]["Variables"],
            "CLUSTER_NAME",
            ref("ClusterName"),
        ),
        "does not set again what Globals shares",
    ),
    # Log groups
    (
        "logs:CreateLogGroup back in scan-gate's role",
        lambda t: set_item(
            role_statement(t, "ScanGateRole", "logs:PutLogEvents"),
            "Action",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        ),
        "KNOWN_ACTIONS",
    ),
    (
        "scan-gate's role writing to deploy-notifier's log group",
        lambda t: set_item(
            role_statement(t, "ScanGateRole", "logs:PutLogEvents"),
            "Resource",
            [getatt("DeployNotifierLogGroup", "Arn")],
        ),
        "logs only to its own log group",
    ),
    (
        "offhours-scaler back on the log group Lambda creates (LoggingConfig.LogGroup removed)",
        lambda t: props(t, "OffhoursScalerFunction")["LoggingConfig"].pop("LogGroup"),
        "LoggingConfig.LogGroup",
    ),
    (
        "deploy-notifier's log group without retention",
        lambda t: props(t, "DeployNotifierLogGroup").pop("RetentionInDays"),
        "RetentionInDays",
    ),
    (
        "a retention CloudWatch does not accept (45 days)",
        lambda t: t["Parameters"]["FunctionLogRetentionDays"]["AllowedValues"].append(45),
        "AllowedValues",
    ),
    (
        "scan-gate's log group unencrypted",
        lambda t: props(t, "ScanGateLogGroup").pop("KmsKeyId"),
        "KmsKeyId",
    ),
    (
        "the key serving every log group of the account",
        lambda t: set_item(
            logs_key_statement(t),
            "Condition",
            {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": {
                        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
                    }
                }
            },
        ),
        "function log groups only",
    ),
    # Alarms on the automation
    (
        "scan-gate's Throttles alarm deleted",
        lambda t: t["Resources"].pop("ScanGateThrottlesAlarm"),
        "ScanGateFunction: an AWS/Lambda Throttles alarm",
    ),
    (
        "offhours-scaler's AsyncEventsDropped alarm deleted",
        lambda t: t["Resources"].pop("OffhoursScalerAsyncEventsDroppedAlarm"),
        "OffhoursScalerFunction: an AWS/Lambda AsyncEventsDropped alarm",
    ),
    (
        "deploy-notifier's DestinationDeliveryFailures alarm on scan-gate instead",
        lambda t: set_item(
            props(t, "DeployNotifierDestinationDeliveryFailuresAlarm")["Dimensions"][0],
            "Value",
            ref("ScanGateFunction"),
        ),
        "DeployNotifierFunction: an AWS/Lambda DestinationDeliveryFailures alarm",
    ),
    (
        "the approval rule's alarm on RuleName alone (the default bus's metric)",
        lambda t: set_item(
            props(t, "ScanGateApprovalRuleFailedInvocationsAlarm"),
            "Dimensions",
            [
                d
                for d in props(t, "ScanGateApprovalRuleFailedInvocationsAlarm")["Dimensions"]
                if d["Name"] != "EventBusName"
            ],
        ),
        "ScanGateFunction.Approval: an AWS/Events FailedInvocations alarm",
    ),
    (
        "the task-stops rule's alarm deleted",
        lambda t: t["Resources"].pop("DeployNotifierTaskStopsRuleFailedInvocationsAlarm"),
        "DeployNotifierFunction.TaskStopped: an AWS/Events FailedInvocations alarm",
    ),
    (
        "the alarms rule's alarm deleted",
        lambda t: t["Resources"].pop("DeployNotifierAlarmsRuleFailedInvocationsAlarm"),
        "DeployNotifierFunction.Alarms: an AWS/Events FailedInvocations alarm",
    ),
    # The post-deployment watch
    (
        "deploy-notifier's rollback policy granted whatever AutoRollbackOnRegression says",
        lambda t: t["Resources"]["DeployNotifierRollbackPolicy"].pop("Condition"),
        "ecs:UpdateService only in a policy that exists when",
    ),
    (
        "deploy-notifier's rollback policy on every service",
        lambda t: set_item(
            props(t, "DeployNotifierRollbackPolicy")["PolicyDocument"]["Statement"][0],
            "Resource",
            {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/*"},
        ),
        "ECS service actions",
    ),
    (
        "the memory alarm at 90% by default instead of the manual's 85%",
        lambda t: set_item(t["Parameters"]["MemoryHighPercent"], "Default", 90),
        "the manual's 85%",
    ),
    (
        "the 5xx alarm created without a load balancer",
        lambda t: t["Resources"]["ServiceServerErrorsAlarm"].pop("Condition"),
        "ServiceServerErrorsAlarm: named <AlarmPrefix>5xx",
    ),
    (
        "the latency alarm e-mailing the ops-alarms topic too",
        lambda t: set_item(props(t, "ServiceLatencyAlarm"), "AlarmActions", [ref("AlarmTopic")]),
        "ServiceLatencyAlarm: named <AlarmPrefix>latency",
    ),
    (
        "the alarms rule matching the prefix (and so the automation's own alarms)",
        lambda t: set_item(
            event(t, "DeployNotifierFunction", "Alarms")["Pattern"]["detail"],
            "alarmName",
            [{"prefix": {"Fn::Sub": "menotime-${Environment}-"}}],
        ),
        "exactly the five service alarms",
    ),
    (
        "the task rule passing every stop",
        lambda t: event(t, "DeployNotifierFunction", "TaskStopped")["Pattern"]["detail"].pop("$or"),
        "and no other stop",
    ),
    (
        "the reconcile schedule back in the default schedule group",
        lambda t: event(t, "OffhoursScalerFunction", "Reconcile").pop("GroupName"),
        "Reconcile: in a schedule group of its own",
    ),
    (
        "the reconcile schedule in the account's default group, by name",
        lambda t: set_item(
            event(t, "OffhoursScalerFunction", "Reconcile"), "GroupName", "default"
        ),
        "Reconcile: in a schedule group of its own",
    ),
    (
        "the reconcile schedule's InvocationDroppedCount alarm deleted",
        lambda t: t["Resources"].pop("ReconcileScheduleDroppedAlarm"),
        "InvocationDroppedCount alarm on its group ReconcileScheduleGroup",
    ),
    (
        "an alarm treating missing data as breaching",
        lambda t: set_item(props(t, "ReconcileScheduleTargetErrorsAlarm"), "TreatMissingData", "breaching"),
        "notBreaching",
    ),
    (
        "the tag-key condition of the scaler's TagResource dropped",
        lambda t: role_statement(t, "OffhoursScalerRole", "ecs:TagResource").pop("Condition"),
        "aws:TagKeys",
    ),
    # samconfig.toml
    (
        "samconfig.toml with an ACCOUNT_ID placeholder again",
        in_section(
            "dev.deploy.parameters",
            'TaskRoleName=\\"menotime-ecs-task-role\\"',
            'TaskRoleName=\\"arn:aws:iam::ACCOUNT_ID:role/menotime-ecs-task-role\\"',
        ),
        "ACCOUNT_ID",
    ),
    (
        "samconfig.toml naming a role by its ARN",
        in_section(
            "prod.sync.parameters",
            'OperatorsRoleName=\\"menotime-operators\\"',
            'OperatorsRoleName=\\"arn:aws:iam::123456789012:role/menotime-operators\\"',
        ),
        "does not match the template's AllowedPattern",
    ),
    (
        "samconfig.toml with a parameter the template no longer has (TaskRoleArn)",
        in_section("staging.deploy.parameters", "TaskRoleName=", "TaskRoleArn="),
        "is no parameter of the template",
    ),
    (
        "samconfig.toml without staging's sync section",
        without_section("staging.sync.parameters"),
        "[staging.sync.parameters] exists",
    ),
    (
        "samconfig.toml: prod's sync section aimed at another stack",
        in_section("prod.sync.parameters", '"menotime-ops-prod"', '"menotime-ops-prod2"'),
        "prod's sync section targets the same stack",
    ),
    (
        "samconfig.toml building in parallel again",
        in_section("default.build.parameters", "parallel = false", "parallel = true"),
        "parallel = false",
    ),
    (
        "samconfig.toml: prod deploying without confirming its change set",
        in_section("prod.deploy.parameters", "confirm_changeset = true", "confirm_changeset = false"),
        "confirm_changeset",
    ),
]


def self_test(
    path: Path, template: dict[str, Any], text: str, samconfig_text: str | None
) -> int:
    c = Checks()
    if not c.check(samconfig_text is not None, "self-test: samconfig.toml exists next to the template"):
        return 1
    assert samconfig_text is not None
    for what, mutate, expect in MUTATIONS:
        broken, broken_text, broken_samconfig = copy.deepcopy(plain(template)), text, samconfig_text
        try:
            if mutate == "text":
                broken_text = "\n".join(
                    ln
                    for ln in text.splitlines()
                    if not (ln.lstrip().startswith("#") and "resource-level" in ln)
                )
            elif isinstance(mutate, SamconfigEdit):
                broken_samconfig = mutate.edit(samconfig_text)
                if broken_samconfig == samconfig_text:
                    raise ValueError("samconfig.toml unchanged")
            else:
                mutate(broken)  # type: ignore[operator]
        except (KeyError, IndexError, ValueError) as e:
            c.check(
                False,
                f"self-test: {what} is caught",
                f"the mutation no longer applies to the template ({e!r})",
            )
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            result = run(path, broken, broken_text, broken_samconfig)
        fails = [ln for ln in out.getvalue().splitlines() if ln.startswith("FAIL")]
        hit = next((ln for ln in fails if expect in ln), None)
        c.check(
            result.failed > 0 and hit is not None,
            f"self-test: {what} is caught" + (f" ({hit[6:][:110]}...)" if hit else ""),
            f"no FAIL line mentions {expect!r}; got {fails}",
        )
    if c.failed:
        print(f"{c.failed} of {c.count} self-test checks failed")
        return 1
    print(f"all {c.count} self-test checks passed: every rule can fail")
    return 0


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--self-test"]
    path = Path(args[0]) if args else ROOT / "template.yaml"
    template, matches = decode(str(path))
    if matches or template is None:
        for m in matches:
            print(f"FAIL  {path.name} does not parse: {m}")
        return 1
    text = path.read_text()
    samconfig = path.parent / "samconfig.toml"
    samconfig_text = samconfig.read_text() if samconfig.exists() else None
    if "--self-test" in argv:
        return self_test(path, template, text, samconfig_text)
    c = run(path, template, text, samconfig_text)
    if c.failed:
        print(f"{c.failed} of {c.count} checks failed")
        return 1
    print(f"all {c.count} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
