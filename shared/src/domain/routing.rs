//! Routing: which of an image's tags, if any, belongs to this environment.

use regex_lite::Regex;

use super::image::{compare_releases, valid_tag};

/// The tag this environment deploys the image under, or `None` when no tag matches
/// `DEPLOY_TAG_PATTERN` (the image belongs to another environment, or to nobody: a
/// commit SHA, `pr-42`, `latest`).
///
/// When several tags match, the newest release wins (an image tagged both `v1.2.4`
/// and `v1.2.5` is deployed as `v1.2.5`); otherwise the first in the event's order.
pub fn route<'a>(tags: &'a [String], pattern: &Regex) -> Option<&'a str> {
    let mut best: Option<&str> = None;
    for tag in tags.iter().map(String::as_str) {
        if !valid_tag(tag) || !pattern.is_match(tag) {
            continue;
        }
        best = match best {
            None => Some(tag),
            Some(b) if compare_releases(tag, b) == Some(std::cmp::Ordering::Greater) => Some(tag),
            keep => keep,
        };
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    fn default_route(env: Environment, t: &[&str]) -> Option<String> {
        let re = Regex::new(env.default_deploy_tag_pattern()).unwrap();
        route(&tags(t), &re).map(str::to_owned)
    }

    #[test]
    fn each_environment_takes_only_its_own_tags() {
        use Environment::*;
        assert_eq!(
            default_route(Dev, &["develop", "a1b2c3d"]).as_deref(),
            Some("develop")
        );
        assert_eq!(
            default_route(Staging, &["main", "latest", "x9y8z7w"]).as_deref(),
            Some("main")
        );
        assert_eq!(
            default_route(Prod, &["v1.2.3", "latest"]).as_deref(),
            Some("v1.2.3")
        );
        for env in [Dev, Staging, Prod] {
            for never in [
                &["a1b2c3d"][..],
                &["pr-42"],
                &["latest"],
                &["pr-43", "x9y8z7w"],
                &[],
            ] {
                assert_eq!(default_route(env, never), None, "{env} {never:?}");
            }
        }
        assert_eq!(default_route(Dev, &["main"]), None);
        assert_eq!(default_route(Staging, &["develop", "v1.2.3"]), None);
        assert_eq!(default_route(Prod, &["develop", "main"]), None);
    }

    #[test]
    fn anchored_patterns_do_not_match_inside_other_tags() {
        use Environment::*;
        for t in [
            "v1.2.3-rc1",
            "xv1.2.3",
            "v1.2",
            "v1.2.3.4",
            "developer",
            "main-old",
            "pr-42-v1.2.3",
        ] {
            assert_eq!(default_route(Prod, &[t]), None, "{t}");
            assert_eq!(default_route(Dev, &[t]), None, "{t}");
            assert_eq!(default_route(Staging, &[t]), None, "{t}");
        }
    }

    #[test]
    fn newest_release_wins_when_several_match() {
        assert_eq!(
            default_route(Environment::Prod, &["v1.2.4", "v1.2.10", "v1.2.5"]).as_deref(),
            Some("v1.2.10")
        );
        let re = Regex::new("^(develop|main)$").unwrap();
        assert_eq!(route(&tags(&["main", "develop"]), &re), Some("main"));
    }

    #[test]
    fn invalid_tags_are_never_routed() {
        let re = Regex::new("^.*$").unwrap();
        assert_eq!(route(&tags(&["has space", ""]), &re), None);
    }
}
