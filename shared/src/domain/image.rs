//! Image names, tags, digests and references, and the release order of tags.

use std::cmp::Ordering;

/// ECR repository name rules: lower-case components separated by `/`, each made of
/// letters and digits joined by `.`, `_` or `-`; 2 to 256 characters.
pub fn valid_repository_name(s: &str) -> bool {
    (2..=256).contains(&s.len())
        && s.split('/').all(|part| {
            !part.is_empty()
                && part.split(['.', '_', '-']).all(|w| {
                    !w.is_empty()
                        && w.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        })
}

/// An image digest as ECR reports it: `sha256:` and 64 lower-case hex digits.
pub fn valid_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Docker tag rules: up to 128 of letters, digits, `_`, `.`, `-`, not starting with `.` or `-`.
pub fn valid_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `<account>.dkr.ecr.<region>.amazonaws.com`
pub fn registry(account: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{account}.dkr.ecr.{region}.{suffix}")
}

/// `<registry>/<repository>@<digest>`: pinning by digest makes what was scanned exactly
/// what runs, even if the tag is moved afterwards.
pub fn pinned_uri(account: &str, region: &str, repository: &str, digest: &str) -> String {
    format!("{}/{repository}@{digest}", registry(account, region))
}

/// A container image reference split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Registry and repository, e.g. `123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend`.
    pub name: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    pub fn parse(s: &'a str) -> Self {
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                Self {
                    name: &rest[..at],
                    tag: Some(&rest[at + 1..]).filter(|t| !t.is_empty()),
                    digest,
                }
            }
            None => Self {
                name: rest,
                tag: None,
                digest,
            },
        }
    }
}

/// A release tag's version: `v1.2.3` or `1.2.3`, with optional pre-release/build
/// parts as semantic versioning defines them. Anything else (`develop`, `main`, a commit
/// SHA) has no release order.
pub fn release_version(tag: &str) -> Option<semver::Version> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    semver::Version::parse(t).ok().or_else(|| {
        // Semantic versioning forbids leading zeros, but the prod tag pattern admits
        // `v1.02.3`: read plain MAJOR.MINOR.PATCH numerically rather than not at all.
        let nums: Vec<u64> = t
            .split('.')
            .map(|p| {
                p.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect::<Option<_>>()?;
        match nums[..] {
            [major, minor, patch] => Some(semver::Version::new(major, minor, patch)),
            _ => None,
        }
    })
}

/// Orders two tags as releases, if both are releases. `Less` means `a` is older.
pub fn compare_releases(a: &str, b: &str) -> Option<Ordering> {
    Some(release_version(a)?.cmp_precedence(&release_version(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["menotime/backend", "ab", "a-b/c_d.e/f0"] {
            assert!(valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Menotime/backend",
            "menotime//backend",
            "/backend",
            "menotime/backend/",
            "a--",
            "with space",
        ] {
            assert!(!valid_repository_name(bad), "{bad}");
        }
    }

    #[test]
    fn digests_and_tags() {
        let d = format!("sha256:{}", "a1".repeat(32));
        assert!(valid_digest(&d));
        assert!(!valid_digest("sha256:abc"));
        assert!(!valid_digest(&d.to_uppercase()));
        assert!(!valid_digest(&format!("md5:{}", "a1".repeat(32))));
        for ok in ["v1.2.3", "develop", "pr-42", "a1b2c3d", "_x"] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", "-x", ".x", "a b", "a:b", &"x".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn pinned_uri_uses_the_account_registry() {
        assert_eq!(
            pinned_uri("123456789012", "us-west-1", "menotime/backend", "sha256:ab"),
            "123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend@sha256:ab"
        );
        assert_eq!(
            registry("123456789012", "cn-north-1"),
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn image_refs() {
        let r =
            ImageRef::parse("123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend:v1.2.3");
        assert_eq!(r.tag, Some("v1.2.3"));
        assert_eq!(r.digest, None);
        let r = ImageRef::parse(
            "123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend@sha256:ab",
        );
        assert_eq!((r.tag, r.digest), (None, Some("sha256:ab")));
        let r = ImageRef::parse("localhost:5000/menotime/backend:main@sha256:ab");
        assert_eq!(
            (r.name, r.tag, r.digest),
            (
                "localhost:5000/menotime/backend",
                Some("main"),
                Some("sha256:ab")
            )
        );
        let r = ImageRef::parse("localhost:5000/menotime/backend");
        assert_eq!((r.name, r.tag), ("localhost:5000/menotime/backend", None));
        let r = ImageRef::parse("python:3.11-slim");
        assert_eq!((r.name, r.tag), ("python", Some("3.11-slim")));
    }

    #[test]
    fn release_order() {
        use Ordering::*;
        assert_eq!(compare_releases("v1.2.2", "v1.2.3"), Some(Less));
        assert_eq!(compare_releases("v1.2.10", "v1.2.9"), Some(Greater));
        assert_eq!(compare_releases("v2.0.0", "v10.0.0"), Some(Less));
        assert_eq!(compare_releases("v1.2.3", "1.2.3"), Some(Equal));
        assert_eq!(compare_releases("v1.3.0-rc.1", "v1.3.0"), Some(Less));
        assert_eq!(compare_releases("v1.2.3+build.7", "v1.2.3"), Some(Equal));
        assert_eq!(compare_releases("develop", "v1.2.3"), None);
        assert_eq!(compare_releases("v1.2", "v1.2.3"), None);
        assert_eq!(compare_releases("a1b2c3d", "a1b2c3e"), None);
        assert_eq!(
            compare_releases("v1.02.3", "v1.2.4"),
            Some(Less),
            "leading zeros"
        );
        assert_eq!(compare_releases("v01.2.3", "v1.2.3"), Some(Equal));
        assert_eq!(compare_releases("v1.2.+3", "v1.2.3"), None);
    }
}
