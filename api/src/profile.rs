//! `Profile`: rules and labels applied to the endpoints that list it, after selector-based
//! policy. Kubernetes namespaces and service accounts appear as profiles `kns.<namespace>` and
//! `ksa.<namespace>.<name>`. Field names follow Calico's `profile.go`; Calico writes no
//! defaults; checks are the validator's (rules as in policies, `labelsToApply` as labels).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::labels::{check_labels, check_metadata};
use crate::rule::Rule;
use crate::validation::{Problems, kind_impls};

/// The profile Calico provides itself: allow everything. calicoctl refuses to create one of
/// this name ("already exists").
pub const DEFAULT_ALLOW_PROFILE: &str = "projectcalico-default-allow";
/// Most rules in one direction of one profile.
const RULES_MAX: usize = 1024;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ProfileSpec,
}

kind_impls!(Profile);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<Rule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<Rule>>,
    /// Labels every endpoint using the profile inherits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_to_apply: Option<BTreeMap<String, String>>,
}

impl Profile {
    fn defaults(&mut self) {}

    fn check(&self, p: &mut Problems) {
        p.subdomain("metadata.name", &self.metadata.name);
        check_metadata(p, &self.metadata);
        for (name, rules) in [
            ("ingress", &self.spec.ingress),
            ("egress", &self.spec.egress),
        ] {
            let rules = rules.as_deref().unwrap_or_default();
            if rules.len() > RULES_MAX {
                p.add(
                    format!("spec.{name}"),
                    format!("{} rules", rules.len()),
                    format!("at most {RULES_MAX} rules"),
                );
            }
            for (i, r) in rules.iter().enumerate() {
                r.check(&format!("spec.{name}[{i}]"), p);
            }
        }
        if let Some(l) = &self.spec.labels_to_apply {
            check_labels(p, "spec.labelsToApply", l);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_round_trip, errors, parse_error};

    const PROFILE: &str = "
apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: dev-apps
  labels: {env: dev}
spec:
  ingress:
    - action: Deny
      source:
        nets: [10.0.20.0/24]
    - action: Allow
      source:
        selector: profile == 'dev'
  egress:
    - action: Allow
  labelsToApply:
    profile: dev
    projectcalico.org/namespace: dev
";

    #[test]
    fn round_trip_unchanged() {
        assert_round_trip(PROFILE, "");
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.default}
spec: {}
",
            "",
        );
    }

    #[test]
    fn checks() {
        assert_eq!(
            errors(&PROFILE.replace("profile: dev\n", "profile: -dev\n")),
            [
                "error with field spec.labelsToApply.profile = '-dev' (invalid label value: a \
              label value must be empty or consist of alphanumeric characters, '-', '_' or '.', \
              and must start and end with an alphanumeric character)"
            ]
        );
        assert_eq!(
            errors(&PROFILE.replace("10.0.20.0/24", "10.0.20.1/24")),
            [
                "error with field spec.ingress[0].source.nets[0] = '10.0.20.1/24' (CIDR has host \
              bits set (did you mean 10.0.20.0/24?))"
            ]
        );
        assert_eq!(
            errors(&PROFILE.replace("dev-apps", "Dev")),
            [
                "error with field metadata.name = 'Dev' (must be a DNS-1123 subdomain: lower-case \
              alphanumerics, '-' and '.', starting and ending with an alphanumeric)"
            ]
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let (path, msg) = parse_error(&PROFILE.replace("labelsToApply", "labelsToAdd"));
        assert_eq!(path, "spec.labelsToAdd");
        assert!(msg.contains("unknown field"), "{msg}");
    }
}
