//! Just enough ARN parsing for the ARNs these functions meet: SNS topics, ECR
//! repositories, ECS services and task definitions.

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicArn {
    pub arn: String,
    /// `aws`, `aws-cn`, `aws-us-gov`: the partition every ARN of the stack is in.
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
}

impl Arn {
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let partition = parts.next()?;
        let service = parts.next()?;
        let region = parts.next()?;
        let account = parts.next()?;
        let resource = parts.next()?;
        if partition.is_empty() || service.is_empty() || resource.is_empty() {
            return None;
        }
        Some(Self {
            partition: partition.into(),
            service: service.into(),
            region: region.into(),
            account: account.into(),
            resource: resource.into(),
        })
    }

    fn has_account_and_region(&self) -> bool {
        self.account.len() == 12
            && self.account.bytes().all(|b| b.is_ascii_digit())
            && !self.region.is_empty()
    }

    pub fn into_topic(self) -> Option<TopicArn> {
        if self.service != "sns" || !self.has_account_and_region() || self.resource.contains(':') {
            return None;
        }
        Some(TopicArn {
            arn: format!(
                "arn:{}:sns:{}:{}:{}",
                self.partition, self.region, self.account, self.resource
            ),
            partition: self.partition,
            region: self.region,
            account: self.account,
            name: self.resource,
        })
    }

    /// `arn:aws:ecr:REGION:ACCOUNT:repository/NAME` → `NAME`.
    pub fn ecr_repository(&self) -> Option<&str> {
        if self.service != "ecr" || !self.has_account_and_region() {
            return None;
        }
        self.resource
            .strip_prefix("repository/")
            .filter(|n| !n.is_empty())
    }

    /// `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION` → (`FAMILY`, `REVISION`).
    pub fn task_definition(&self) -> Option<(&str, u32)> {
        if self.service != "ecs" {
            return None;
        }
        let rest = self.resource.strip_prefix("task-definition/")?;
        let (family, rev) = rest.rsplit_once(':')?;
        Some((family, rev.parse().ok()?))
    }
}

/// `family:revision` from a task-definition ARN, the short form operators type in
/// `aws ecs update-service --task-definition`. Falls back to the input.
pub fn task_definition_short(arn: &str) -> String {
    Arn::parse(arn)
        .as_ref()
        .and_then(|a| a.task_definition().map(|(f, r)| format!("{f}:{r}")))
        .unwrap_or_else(|| arn.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic() {
        let t = Arn::parse("arn:aws:sns:us-west-1:123456789012:menotime-prod-notify")
            .unwrap()
            .into_topic()
            .unwrap();
        assert_eq!(t.account, "123456789012");
        assert_eq!(t.region, "us-west-1");
        assert_eq!(t.name, "menotime-prod-notify");
        assert!(Arn::parse("arn:aws:sns:us-west-1:1234:x")
            .unwrap()
            .into_topic()
            .is_none());
        assert!(Arn::parse("arn:aws:sqs:us-west-1:123456789012:x")
            .unwrap()
            .into_topic()
            .is_none());
        assert!(Arn::parse("not-an-arn").is_none());
        assert!(Arn::parse("arn:aws:sns").is_none());
    }

    #[test]
    fn repository() {
        let a =
            Arn::parse("arn:aws:ecr:us-west-1:123456789012:repository/menotime/backend").unwrap();
        assert_eq!(a.ecr_repository(), Some("menotime/backend"));
        assert_eq!(a.region, "us-west-1");
        let a = Arn::parse("arn:aws:ecr:us-west-1:123456789012:repository/").unwrap();
        assert_eq!(a.ecr_repository(), None);
    }

    #[test]
    fn task_definition() {
        let arn = "arn:aws:ecs:us-west-1:123456789012:task-definition/menotime-backend-prod:48";
        assert_eq!(
            Arn::parse(arn).unwrap().task_definition(),
            Some(("menotime-backend-prod", 48))
        );
        assert_eq!(task_definition_short(arn), "menotime-backend-prod:48");
        assert_eq!(task_definition_short("weird"), "weird");
    }
}
