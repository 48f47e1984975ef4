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
      a tag-key condition), task-definition tagging only while registering;
    - sns:Publish only to the stack's notify / on-call topics; KMS only on the
      stack's key through SNS; logs only to the function's own log group; SQS only
      to the failure queue; ECR only on the repository;
    - iam:PassRole only on TaskRoleArn / ExecutionRoleArn, with iam:PassedToService
      = ecs-tasks.amazonaws.com; no other IAM action;
    - the roles trust lambda.amazonaws.com only; SAM adds no managed policy.
  Functions: reserved concurrency 1 on scan-gate and offhours-scaler.
  Alarms: an Errors alarm per function and a depth alarm on every dead-letter
  queue, all notifying AlarmTopic (on-call's e-mail), none a contract topic.
  Encryption: every SNS topic with the stack's KMS key (rotated); every queue
  encrypted (SSE-SQS or KMS).
  Approvals: the approval rule on the dedicated menotime-<env>-approvals bus, whose
  policy lets only OperatorsRoleArn put events (Allow for it, Deny for any other
  principal); the failure queue's policy names every rule by its real ARN
  (rule/<bus>/<name> on a custom bus); scan-gate's APPROVAL_EVENT_BUS is that bus.

Prints one PASS/FAIL line per check; exits non-zero if any check fails.

--self-test proves the checks can fail: it breaks the template in memory one rule at
a time (drops the iam:PassedToService condition, puts the approval rule back on the
default bus, ...) and passes only if every such break is caught by a FAIL.

Usage: .venv/bin/python scripts/check_template_security.py [template.yaml]
       .venv/bin/python scripts/check_template_security.py --self-test [template.yaml]
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from cfnlint.decode import decode

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
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sns:Publish",
    "sqs:SendMessage",
}
CONTRACT_TOPICS = ["NotifyTopic", "OncallTopic"]
ALARM_TOPIC = "AlarmTopic"
FAILURE_QUEUE = "FailureQueue"
KEY = "OpsKey"
PASS_ROLE_PARAMETERS = ["TaskRoleArn", "ExecutionRoleArn"]
OPERATORS_PARAMETER = "OperatorsRoleArn"
APPROVAL_BUS_NAME = "menotime-${Environment}-approvals"
# Logical id -> short name (menotime-<env>-<short>), and whether reserved concurrency
# must be exactly 1.
FUNCTIONS = {
    "ScanGateFunction": ("scan-gate", True),
    "DeployNotifierFunction": ("deploy-notifier", False),
    "OffhoursScalerFunction": ("offhours-scaler", True),
}
APPROVAL_FUNCTION, APPROVAL_EVENT = "ScanGateFunction", "Approval"


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


def function_policies(template: dict[str, Any], fn: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for every statement the function's execution role gets:
    the role named by Role (an AWS::IAM::Role of this template) and SAM's inline
    Policies (none expected, but checked the same)."""
    resources = template["Resources"]
    props = resources[fn].get("Properties", {})
    role = props.get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        role_id = role["Fn::GetAtt"][0]
        for p in as_list(resources[role_id]["Properties"].get("Policies")):
            for i, s in enumerate(statements(p.get("PolicyDocument", {}))):
                yield f"{role_id}.{p.get('PolicyName')}[{s.get('Sid', i)}]", s
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
    pass_roles = [ref(p) for p in PASS_ROLE_PARAMETERS]
    pass_role_seen: list[str] = []

    for fn, (short, _) in FUNCTIONS.items():
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
        # below), scalable targets (their ids are random; Application Auto Scaling
        # checks ecs:UpdateService on the service too) and the ":*" of the
        # function's own log group (its streams).
        log_group = f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/menotime-${{Environment}}-{short}"
        allowed_wild = TASK_DEFINITION_ARNS | {SCALABLE_TARGET_ARNS, log_group + ":*"}
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
                if cond != {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}:
                    bad.append(
                        f"{where}: tags task definitions without ecs:CreateAction = RegisterTaskDefinition"
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
        bad = [
            f"{where}: {json.dumps(plain(r))}"
            for where, s in stmts
            if any(str(a).startswith("logs:") for a in as_list(s.get("Action")))
            for r in as_list(s.get("Resource"))
            if sub_text(r) not in (log_group, log_group + ":*")
        ]
        c.check(not bad, f"{fn}: logs only to /aws/lambda/menotime-<env>-{short}", "; ".join(bad))
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


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: v.get("Properties", {})
        for k, v in template["Resources"].items()
        if v.get("Type") == "AWS::CloudWatch::Alarm"
    }


def notifies_alarm_topic(props: dict[str, Any]) -> bool:
    return ref(ALARM_TOPIC) in [plain(a) for a in as_list(props.get("AlarmActions"))]


def check_alarms(c: Checks, template: dict[str, Any]) -> None:
    resources = template["Resources"]
    all_alarms = alarms(template)
    for fn in FUNCTIONS:
        found = [
            k
            for k, p in all_alarms.items()
            if p.get("Namespace") == "AWS/Lambda"
            and p.get("MetricName") == "Errors"
            and [plain(d) for d in as_list(p.get("Dimensions"))]
            == [{"Name": "FunctionName", "Value": ref(fn)}]
            and notifies_alarm_topic(p)
        ]
        c.check(
            bool(found), f"{fn}: an AWS/Lambda Errors alarm notifies {ALARM_TOPIC}", "none found"
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
    p = params.get(OPERATORS_PARAMETER, {})
    c.check(
        p.get("Type") == "String"
        and str(p.get("AllowedPattern", "")).startswith("^arn:aws")
        and ":role/" in str(p.get("AllowedPattern", "")),
        f"parameter {OPERATORS_PARAMETER}: an IAM role ARN (AllowedPattern)",
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
    operators = ref(OPERATORS_PARAMETER)
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


def run(path: Path, template: dict[str, Any], text: str) -> Checks:
    c = Checks()
    check_iam(c, template, text)
    check_deployed_iam(c, path, template)
    check_functions(c, template)
    check_alarms(c, template)
    check_encryption(c, template)
    check_approvals(c, template)
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


def bus_statements(t: dict[str, Any]) -> list[dict[str, Any]]:
    return t["Resources"]["ApprovalBus"]["Properties"]["Policy"]["Statement"]


def set_item(d: dict[str, Any], key: str, value: Any) -> None:
    d[key] = value


Mutation = Callable[[dict[str, Any]], Any]
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
        "allows events:PutEvents to OperatorsRoleArn",
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
]


def self_test(path: Path, template: dict[str, Any], text: str) -> int:
    c = Checks()
    for what, mutate, expect in MUTATIONS:
        broken, broken_text = copy.deepcopy(plain(template)), text
        try:
            if mutate == "text":
                broken_text = "\n".join(
                    ln
                    for ln in text.splitlines()
                    if not (ln.lstrip().startswith("#") and "resource-level" in ln)
                )
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
            result = run(path, broken, broken_text)
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
    if "--self-test" in argv:
        return self_test(path, template, text)
    c = run(path, template, text)
    if c.failed:
        print(f"{c.failed} of {c.count} checks failed")
        return 1
    print(f"all {c.count} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
