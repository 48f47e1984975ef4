#!/usr/bin/env python3
"""Prove that the EventBridge rules of template.yaml route the sample events correctly.

Loads template.yaml with cfn-lint's own loader (so !Ref / !Sub / !If parse), resolves
the EventBridgeRule patterns of every function for a prod stack (parameters at their
defaults, conditions evaluated), each with the event bus
it is on (EventBusName; the default bus otherwise), and matches every sample event
against every rule of the bus the event arrives on, with moto's in-process
EventBridge pattern matcher. A rule only ever sees the events of its own bus: AWS
services send theirs to the default bus, operators put approvals on the approvals
bus (menotime-<env>-approvals, the only one its policy lets them use).

  events/scan-*.json        -> exactly scan-gate's ECR scan rule
  events/inspector-*.json   -> exactly scan-gate's Inspector scan rule
  events/approval-*.json    -> on the approvals bus: exactly scan-gate's approval rule;
                               put on the default bus instead: no rule at all
  events/ecs-deployment-*   -> exactly deploy-notifier's deployments rule; the completed
                               one also scan-gate's rollout-completed rule
  events/ecs-service-*      -> exactly deploy-notifier's service-actions rule
  events/ecs-task-oom.json, ecs-task-failed-to-start.json, ecs-task-spot-interrupted.json
                            -> exactly deploy-notifier's task-stops rule
  events/ecs-task-stopped-scale-in.json, bad-ecs-*.json -> no rule
  events/cloudwatch-alarm-*.json -> exactly deploy-notifier's alarms rule
  events/bad-alarm-other-environment.json (menotime-staging-5xx) -> no rule
  events/bad-alarm-other-account.json -> nothing but (possibly) the alarms rule: the
                               default bus does not filter on account; the function
                               rejects it
  events/bad-other-repository.json, events/bad-unhandled-push.json -> no rule
  events/bad-other-account.json, bad-other-region.json, bad-missing-digest.json
                            -> nothing but (possibly) the ECR rule: the default bus
                               does not filter on account, region or digest; the
                               function rejects them
  shared/fixtures/reference/: each AWS example reaches exactly the rule meant for
  it, and the others (pushes, findings, schedules) reach none

Prints one line per check; exits non-zero if any check fails.

Usage: .venv/bin/python scripts/check_event_patterns.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from cfnlint.decode import decode
from moto.events.models import EventPattern

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
FUNCTIONS = ["ScanGateFunction", "DeployNotifierFunction"]

# The prod stack the patterns are resolved for (samconfig.toml, config-env prod).
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
}
OVERRIDES = {
    "Environment": "prod",
    "RepositoryName": "menotime/backend",
    "ClusterName": "menotime-prod-cluster",
    "ServiceName": "menotime-prod-service",
}

# Rules are identified by their event's logical name in the template.
ECR, INSPECTOR, APPROVAL = "EcrScan", "InspectorScan", "Approval"
DEPLOYMENTS, SERVICE_ACTIONS, TASKS = "Deployments", "ServiceActions", "TaskStopped"
ALARMS = "Alarms"
ROLLOUT_COMPLETED = "RolloutCompleted"
ALL_RULES = {ECR, INSPECTOR, APPROVAL, DEPLOYMENTS, SERVICE_ACTIONS, TASKS, ALARMS, ROLLOUT_COMPLETED}

# Event buses, as resolved for the prod stack.
DEFAULT_BUS = "default"
APPROVALS_BUS = "menotime-prod-approvals"
# The bus each rule must be on.
RULE_BUS = {rule: DEFAULT_BUS for rule in ALL_RULES} | {APPROVAL: APPROVALS_BUS}
# The bus a sample event arrives on: approvals are put on the approvals bus by an
# operator; everything else is sent by AWS to the default bus.
EVENT_BUS = [(r"approval-.*\.json", APPROVALS_BUS), (r".*\.json", DEFAULT_BUS)]

# (file name regex, allowed match sets). A file must match one of the sets exactly.
SAMPLE_EXPECTATIONS = [
    (r"scan-.*\.json", [{ECR}]),
    (r"inspector-.*\.json", [{INSPECTOR}]),
    (r"approval-.*\.json", [{APPROVAL}]),
    (r"bad-other-repository\.json", [set()]),
    (r"bad-unhandled-push\.json", [set()]),
    # Valid ECR scan envelopes whose account / region / digest the function rejects.
    (r"bad-(other-account|other-region|missing-digest)\.json", [set(), {ECR}]),
    # A completed rollout also reaches scan-gate (a deferred image resumes).
    (r"ecs-deployment-completed\.json", [{DEPLOYMENTS, ROLLOUT_COMPLETED}]),
    (r"ecs-deployment-.*\.json", [{DEPLOYMENTS}]),
    (r"ecs-service-.*\.json", [{SERVICE_ACTIONS}]),
    (r"ecs-task-(oom|failed-to-start|spot-interrupted)\.json", [{TASKS}]),
    # Every deployment stops tasks; only OOM kills, failures to start and Spot
    # interruptions reach the function.
    (r"ecs-task-stopped-scale-in\.json", [set()]),
    (r"cloudwatch-alarm-.*\.json", [{ALARMS}]),
    # Another environment's alarm (same account): not named in this stack's rule.
    (r"bad-alarm-other-environment\.json", [set()]),
    # Another account's alarm of the same name: the function rejects it.
    (r"bad-alarm-other-account\.json", [set(), {ALARMS}]),
    # Another account's or another service's ARN: the rules name this service.
    (r"bad-ecs-.*\.json", [set()]),
]
REFERENCE_EXPECTATIONS = [
    (r"ecr-image-scan-complete\.json", [{ECR}]),
    # Same repository and scan status as the one above, only without the
    # zero-count severities: it must reach the function too.
    (r"ecr-image-scan-complete-missing-severities\.json", [{ECR}]),
    (r"inspector2-scan\.json", [{INSPECTOR}]),
    (r"ecs-deployment-completed\.json", [{DEPLOYMENTS, ROLLOUT_COMPLETED}]),
    (r"ecs-deployment-.*\.json", [{DEPLOYMENTS}]),
    (r"ecs-service-.*\.json", [{SERVICE_ACTIONS}]),
    (r"ecs-task-stopped(-failed-to-start)?\.json", [{TASKS}]),
    (r"cloudwatch-alarm-state-change\.json", [{ALARMS}]),
    (r".*\.json", [set()]),
]


class Resolver:
    """Resolves the intrinsic functions the rule patterns use (Ref, Fn::Sub, Fn::If
    with the template's conditions)."""

    def __init__(
        self,
        parameters: dict[str, object],
        resources: dict[str, dict] | None = None,
        conditions: dict[str, object] | None = None,
    ):
        self.resources = resources or {}
        self.conditions = conditions or {}
        self.values: dict[str, str] = dict(PSEUDO)
        for name, spec in parameters.items():
            if "Default" in spec:
                self.values[name] = str(spec["Default"])
        self.values.update(OVERRIDES)

    def ref(self, name: str) -> str:
        resource = self.resources.get(name, {})
        if resource.get("Type") == "AWS::Events::EventBus":
            # Ref of an event bus is its name.
            return str(self.resolve(resource["Properties"]["Name"]))
        if name not in self.values:
            raise ValueError(f"cannot resolve Ref {name!r} (no default, no override)")
        return self.values[name]

    def sub(self, arg: object) -> str:
        if isinstance(arg, list):
            text, local = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, local = arg, {}

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):  # ${!Literal}
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if "." in name:
                raise ValueError(f"cannot resolve GetAtt ${{{name}}} in Fn::Sub")
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", one, str(text))

    def condition(self, node: object) -> bool:
        """Evaluates a condition (by name, or a Fn::Equals / Not / And / Or)."""
        if isinstance(node, str):
            if node not in self.conditions:
                raise ValueError(f"unknown condition {node!r}")
            return self.condition(self.conditions[node])
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Condition":
                return self.condition(str(arg))
            if key == "Fn::Equals":
                a, b = arg
                return self.resolve(a) == self.resolve(b)
            if key == "Fn::Not":
                return not self.condition(arg[0])
            if key == "Fn::And":
                return all(self.condition(c) for c in arg)
            if key == "Fn::Or":
                return any(self.condition(c) for c in arg)
        raise ValueError(f"unsupported condition {node!r}")

    def resolve(self, node: object) -> object:
        if isinstance(node, dict):
            if len(node) == 1:
                (key, arg), = node.items()
                if key == "Ref":
                    return self.ref(str(arg))
                if key == "Fn::Sub":
                    return self.sub(arg)
                if key == "Fn::If":
                    name, yes, no = arg
                    return self.resolve(yes if self.condition(str(name)) else no)
                if key.startswith("Fn::"):
                    raise ValueError(f"unsupported intrinsic {key} in an event pattern")
            return {str(k): self.resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        if isinstance(node, str):
            return str(node)
        return node


def eventbridge_view(node: object) -> object:
    """The event as EventBridge matches it: an array of objects is matched field by
    field across its elements (AWS's own Inspector2 finding pattern relies on it:
    `"resources": {"type": [...]}` with `resources` an array). moto's matcher only
    descends into objects, so arrays of objects become objects of arrays first."""
    if isinstance(node, dict):
        return {k: eventbridge_view(v) for k, v in node.items()}
    if isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
        keys = {k for x in node for k in x}
        merged: dict[str, object] = {}
        for k in keys:
            values: list[object] = []
            for x in node:
                if k in x:
                    v = eventbridge_view(x[k])
                    values.extend(v if isinstance(v, list) else [v])
            merged[k] = values
        return merged
    return node


class Checks:
    def __init__(self) -> None:
        self.failed = 0
        self.count = 0

    def check(self, ok: bool, what: str) -> None:
        self.count += 1
        if not ok:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {what}")


def load_rules(checks: Checks) -> dict[str, tuple[str, EventPattern]]:
    """Every rule: the bus it is on, and its pattern."""
    template, matches = decode(str(TEMPLATE))
    if matches or template is None:
        for m in matches:
            print(f"FAIL  template.yaml does not parse: {m}")
        sys.exit(1)
    resolver = Resolver(
        template.get("Parameters", {}), template.get("Resources", {}), template.get("Conditions", {})
    )
    rules: dict[str, tuple[str, EventPattern]] = {}
    for function in FUNCTIONS:
        events = template["Resources"][function]["Properties"].get("Events", {})
        for event_name, event in events.items():
            if event.get("Type") != "EventBridgeRule":
                continue
            props = event["Properties"]
            pattern = resolver.resolve(props["Pattern"])
            bus = str(resolver.resolve(props.get("EventBusName", DEFAULT_BUS)))
            checks.check(
                event_name in ALL_RULES and event_name not in rules,
                f"{function}.{event_name}: {json.dumps(pattern)}",
            )
            checks.check(
                bus == RULE_BUS.get(event_name),
                f"{function}.{event_name}: on the {bus} bus (expected {RULE_BUS.get(event_name)})",
            )
            rules[event_name] = (bus, EventPattern.load(json.dumps(pattern)))
    checks.check(
        set(rules) == ALL_RULES,
        f"the template has exactly the rules {sorted(ALL_RULES)}: found {sorted(rules)}",
    )
    return rules


def matching(rules: dict[str, tuple[str, EventPattern]], bus: str, event: object) -> set[str]:
    """The rules of `bus` that an event put on that bus reaches."""
    return {
        role for role, (b, pattern) in rules.items() if b == bus and pattern.matches_event(event)
    }


def check_dir(
    checks: Checks,
    rules: dict[str, tuple[str, EventPattern]],
    folder: Path,
    expectations: list[tuple[str, list[set[str]]]],
) -> None:
    files = sorted(folder.glob("*.json"))
    checks.check(bool(files), f"{folder.relative_to(ROOT)}/ has sample events ({len(files)})")
    for path in files:
        name = path.relative_to(ROOT)
        allowed = next((a for rx, a in expectations if re.fullmatch(rx, path.name)), None)
        if allowed is None:
            checks.check(False, f"{name}: no expectation defined for this file")
            continue
        bus = next(b for rx, b in EVENT_BUS if re.fullmatch(rx, path.name))
        event = eventbridge_view(json.loads(path.read_text()))
        matched = matching(rules, bus, event)
        want = " or ".join(sorted(a)[0] if a else "none" for a in allowed)
        checks.check(
            matched in allowed,
            f"{name}: on the {bus} bus matches {sorted(matched) or 'none'} (expected {want})",
        )
        if bus != DEFAULT_BUS:
            # The same event put on the default bus (by anyone IAM lets call
            # events:PutEvents there) must reach nothing.
            stray = matching(rules, DEFAULT_BUS, event)
            checks.check(
                not stray,
                f"{name}: put on the default bus instead, matches {sorted(stray) or 'none'} (expected none)",
            )


def main() -> int:
    checks = Checks()
    rules = load_rules(checks)
    if set(rules) != ALL_RULES:
        print(f"{checks.failed} of {checks.count} checks failed")
        return 1
    check_dir(checks, rules, ROOT / "events", SAMPLE_EXPECTATIONS)
    check_dir(checks, rules, ROOT / "shared" / "fixtures" / "reference", REFERENCE_EXPECTATIONS)
    if checks.failed:
        print(f"{checks.failed} of {checks.count} checks failed")
        return 1
    print(f"all {checks.count} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
