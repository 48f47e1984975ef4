#!/usr/bin/env python3
"""Prove that the EventBridge rules of template.yaml route the sample events correctly.

Loads template.yaml with cfn-lint's own loader (so !Ref / !Sub parse), resolves the
EventBridgeRule patterns of ScanGateFunction for a prod stack, and matches every
sample event against every rule with moto's in-process EventBridge pattern matcher:

  events/scan-*.json        -> exactly the ECR scan rule
  events/inspector-*.json   -> exactly the Inspector scan rule
  events/approval-*.json    -> exactly the approval rule
  events/bad-other-repository.json, events/bad-unhandled-push.json -> no rule
  events/bad-other-account.json, bad-other-region.json, bad-missing-digest.json
                            -> nothing but (possibly) the ECR rule: the default bus
                               does not filter on account, region or digest; the
                               function rejects them
  shared/fixtures/reference/ecr-image-scan-complete*.json -> exactly the ECR rule
  shared/fixtures/reference/inspector2-scan.json          -> exactly the Inspector rule
  every other reference fixture                           -> no rule

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
FUNCTION = "ScanGateFunction"

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
}

# Rules are identified by the event source in their pattern.
ECR, INSPECTOR, APPROVAL = "ecr-scan", "inspector-scan", "approval"
RULE_BY_SOURCE = {"aws.ecr": ECR, "aws.inspector2": INSPECTOR, "menotime.ops": APPROVAL}

# (file name regex, allowed match sets). A file must match one of the sets exactly.
SAMPLE_EXPECTATIONS = [
    (r"scan-.*\.json", [{ECR}]),
    (r"inspector-.*\.json", [{INSPECTOR}]),
    (r"approval-.*\.json", [{APPROVAL}]),
    (r"bad-other-repository\.json", [set()]),
    (r"bad-unhandled-push\.json", [set()]),
    # Valid ECR scan envelopes whose account / region / digest the function rejects.
    (r"bad-(other-account|other-region|missing-digest)\.json", [set(), {ECR}]),
]
REFERENCE_EXPECTATIONS = [
    (r"ecr-image-scan-complete\.json", [{ECR}]),
    # Same repository and scan status as the one above, only without the
    # zero-count severities: it must reach the function too.
    (r"ecr-image-scan-complete-missing-severities\.json", [{ECR}]),
    (r"inspector2-scan\.json", [{INSPECTOR}]),
    (r".*\.json", [set()]),
]


class Resolver:
    """Resolves the intrinsic functions the rule patterns use (Ref, Fn::Sub)."""

    def __init__(self, parameters: dict[str, object]):
        self.values: dict[str, str] = dict(PSEUDO)
        for name, spec in parameters.items():
            if "Default" in spec:
                self.values[name] = str(spec["Default"])
        self.values.update(OVERRIDES)

    def ref(self, name: str) -> str:
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

    def resolve(self, node: object) -> object:
        if isinstance(node, dict):
            if len(node) == 1:
                (key, arg), = node.items()
                if key == "Ref":
                    return self.ref(str(arg))
                if key == "Fn::Sub":
                    return self.sub(arg)
                if key.startswith("Fn::"):
                    raise ValueError(f"unsupported intrinsic {key} in an event pattern")
            return {str(k): self.resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        if isinstance(node, str):
            return str(node)
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


def load_rules(checks: Checks) -> dict[str, EventPattern]:
    template, matches = decode(str(TEMPLATE))
    if matches or template is None:
        for m in matches:
            print(f"FAIL  template.yaml does not parse: {m}")
        sys.exit(1)
    resolver = Resolver(template.get("Parameters", {}))
    function = template["Resources"][FUNCTION]
    events = function["Properties"].get("Events", {})
    rules: dict[str, EventPattern] = {}
    for event_name, event in events.items():
        if event.get("Type") != "EventBridgeRule":
            continue
        pattern = resolver.resolve(event["Properties"]["Pattern"])
        sources = pattern.get("source", [])
        role = RULE_BY_SOURCE.get(sources[0]) if len(sources) == 1 else None
        checks.check(
            role is not None and role not in rules,
            f"rule {event_name}: one known source {sources} -> {role}: {json.dumps(pattern)}",
        )
        if role is not None:
            rules[role] = EventPattern.load(json.dumps(pattern))
    checks.check(
        set(rules) == {ECR, INSPECTOR, APPROVAL},
        f"{FUNCTION} has exactly the rules {sorted([ECR, INSPECTOR, APPROVAL])}: found {sorted(rules)}",
    )
    return rules


def check_dir(
    checks: Checks,
    rules: dict[str, EventPattern],
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
        event = json.loads(path.read_text())
        matched = {role for role, pattern in rules.items() if pattern.matches_event(event)}
        want = " or ".join(sorted(a)[0] if a else "none" for a in allowed)
        checks.check(
            matched in allowed,
            f"{name}: matches {sorted(matched) or 'none'} (expected {want})",
        )


def main() -> int:
    checks = Checks()
    rules = load_rules(checks)
    if set(rules) != {ECR, INSPECTOR, APPROVAL}:
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
