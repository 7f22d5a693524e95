//! `Tier`: an ordered group of policies; traffic that matches a policy in the tier but no rule
//! gets the tier's default action. Field names follow Calico's `tier.go`; defaults are
//! Calico's `DefaultTierFields` (order 1,000,000, `defaultAction: Deny`); checks are the
//! validator's `validateTier` and the CEL rules for the built-in tiers.

use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::labels::check_metadata;
use crate::names::check_label;
use crate::policy::Order;
use crate::rule::Action;
use crate::validation::{Problems, kind_impls};

/// The order Calico gives a tier that names none, and the built-in `default` tier's order.
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;
/// The built-in `kube-admin` tier's order (Kubernetes AdminNetworkPolicy).
pub const KUBE_ADMIN_TIER_ORDER: f64 = 1_000.0;
/// The built-in `kube-baseline` tier's order (Kubernetes BaselineAdminNetworkPolicy).
pub const KUBE_BASELINE_TIER_ORDER: f64 = 10_000_000.0;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: TierSpec,
    /// Conditions Calico's tier controller writes; kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

kind_impls!(Tier, status);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TierSpec {
    /// Lower applies first. Defaults to 1,000,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    /// `Deny` (the default) or `Pass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<Action>,
}

/// The built-in tiers and the order and default action Calico requires of each.
pub const BUILT_IN: [(&str, f64, Action); 3] = [
    ("default", DEFAULT_TIER_ORDER, Action::Deny),
    ("kube-admin", KUBE_ADMIN_TIER_ORDER, Action::Pass),
    ("kube-baseline", KUBE_BASELINE_TIER_ORDER, Action::Pass),
];

impl Tier {
    fn defaults(&mut self) {
        self.spec.order.get_or_insert(Order(DEFAULT_TIER_ORDER));
        self.spec.default_action.get_or_insert(Action::Deny);
    }

    fn check(&self, p: &mut Problems) {
        let name = &self.metadata.name;
        // Tier names are labels: they appear inside other names and in label values.
        if name.is_empty() {
            p.add("metadata.name", "", "name is required");
        } else if check_label("", name).is_err() {
            p.add(
                "metadata.name",
                name,
                "a tier name must be a DNS-1123 label: at most 63 lower-case alphanumerics or \
                 '-', starting and ending with an alphanumeric, no '.'",
            );
        }
        check_metadata(p, &self.metadata);
        let action = self.spec.default_action;
        if let Some(a) = action.filter(|a| !matches!(a, Action::Deny | Action::Pass)) {
            p.add(
                "spec.defaultAction",
                format!("{a:?}"),
                "defaultAction must be Deny or Pass",
            );
        }
        for (tier, order, want) in BUILT_IN {
            if name != tier {
                continue;
            }
            if action != Some(want) {
                p.add(
                    "spec.defaultAction",
                    action.map(|a| format!("{a:?}")).unwrap_or_default(),
                    format!("the '{tier}' tier must have default action '{want:?}'"),
                );
            }
            if self.spec.order != Some(Order(order)) {
                p.add(
                    "spec.order",
                    self.spec.order.map(|o| o.to_string()).unwrap_or_default(),
                    format!("{tier} tier order must be {}", Order(order)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_round_trip, errors, parse_error};

    const TIER: &str = "
apiVersion: projectcalico.org/v3
kind: Tier
metadata:
  name: security
spec:
  order: 300
";

    #[test]
    fn round_trip_adds_default_action() {
        assert_round_trip(TIER, "spec: {defaultAction: Deny}");
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: platform}
",
            "spec: {order: 1000000, defaultAction: Deny}",
        );
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: kube-admin}
spec: {order: 1000, defaultAction: Pass}
status:
  conditions: [{type: Ready, status: 'True'}]
",
            "",
        );
    }

    #[test]
    fn names_are_labels() {
        assert_eq!(
            errors(&TIER.replace("security", "sec.urity")),
            [
                "error with field metadata.name = 'sec.urity' (a tier name must be a DNS-1123 \
              label: at most 63 lower-case alphanumerics or '-', starting and ending with an \
              alphanumeric, no '.')"
            ]
        );
        assert_eq!(errors(&TIER.replace("security", &"a".repeat(64))).len(), 1);
    }

    #[test]
    fn default_action_is_deny_or_pass() {
        assert_eq!(
            errors(&format!("{TIER}  defaultAction: Allow\n")),
            [
                "error with field spec.defaultAction = 'Allow' (defaultAction must be Deny or \
              Pass)"
            ]
        );
        let (path, _) = parse_error(&format!("{TIER}  defaultAction: deny\n"));
        assert_eq!(path, "spec.defaultAction");
        let (path, msg) = parse_error(&format!("{TIER}  orders: 1\n"));
        assert_eq!(path, "spec.orders");
        assert!(msg.contains("unknown field"), "{msg}");
    }

    #[test]
    fn built_in_tiers_keep_their_order_and_action() {
        assert_eq!(
            errors(
                "
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: kube-admin}
"
            ),
            [
                "error with field spec.defaultAction = 'Deny' (the 'kube-admin' tier must have \
                 default action 'Pass')",
                "error with field spec.order = '1000000' (kube-admin tier order must be 1000)",
            ]
        );
        assert_eq!(
            errors(
                "
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: default}
spec: {order: 5, defaultAction: Pass}
"
            ),
            [
                "error with field spec.defaultAction = 'Pass' (the 'default' tier must have \
                 default action 'Deny')",
                "error with field spec.order = '5' (default tier order must be 1000000)",
            ]
        );
        assert_eq!(
            errors(
                "
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: kube-baseline}
spec: {order: 10000000, defaultAction: Pass}
"
            ),
            Vec::<String>::new()
        );
    }
}
