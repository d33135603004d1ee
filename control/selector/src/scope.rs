//! What a namespaced policy's selectors really select.
//!
//! Calico turns a v3 policy into the selectors Felix evaluates against endpoint labels
//! (libcalico-go `updateprocessors`, `networkpolicyprocessor.go` and `rules.go`); we do the
//! same, on the parsed form rather than on text:
//!
//! - Every workload endpoint carries `projectcalico.org/namespace: <its namespace>`, and inherits
//!   its namespace's labels as `pcns.<key>` (through the namespace's profile). Non-namespaced
//!   things (host endpoints, global network sets) carry no `projectcalico.org/namespace`.
//! - A `NetworkPolicy` in namespace `ns` applies to `(selector) && projectcalico.org/namespace == "ns"`
//!   (just the namespace test when it has no selector); a `GlobalNetworkPolicy` to its selector
//!   as written (`all()` when it has none).
//! - In a rule's `source`/`destination`, a `namespaceSelector` selects over namespace labels:
//!   its keys get the `pcns.` prefix, `all()` becomes "in some namespace"
//!   (`has(projectcalico.org/namespace)`) and `global()` "in no namespace"
//!   (`!has(projectcalico.org/namespace)`). Without one, a rule in a namespaced policy is limited
//!   to the policy's namespace; in a global policy it is not limited.
//! - The namespace part is added only when the rule says something about endpoints at all
//!   (`selector`, `notSelector` or `namespaceSelector`): a rule with only `nets` stays a nets
//!   rule. The result is `(namespace part) && (selector)`, or the namespace part alone.
//! - `notSelector` is not scoped: it stays as written (and is matched as a separate negative
//!   test by the policy compiler).

use crate::expr::Expr;
use crate::{Selector, NAMESPACE_LABEL, NAMESPACE_LABEL_PREFIX};

/// Where a policy lives: `GlobalNetworkPolicy` (or a profile) versus `NetworkPolicy` in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyScope<'a> {
    Global,
    Namespace(&'a str),
}

/// The endpoints a policy applies to, given its `spec.selector` (None when absent).
pub fn policy_selector(scope: PolicyScope<'_>, selector: Option<&Selector>) -> Selector {
    match scope {
        PolicyScope::Global => selector.cloned().unwrap_or_else(Selector::all),
        PolicyScope::Namespace(ns) => {
            let in_namespace = in_namespace(ns);
            Selector::from_expr(match selector {
                Some(s) => Expr::And(vec![s.expr().clone(), in_namespace]),
                None => in_namespace,
            })
        }
    }
}

/// The effective selector of a rule's `source` or `destination`, given its `selector`,
/// `namespaceSelector` and whether it has a `notSelector`. `None` means the rule does not
/// restrict by endpoint labels at all.
pub fn rule_selector(
    scope: PolicyScope<'_>,
    selector: Option<&Selector>,
    namespace_selector: Option<&Selector>,
    has_not_selector: bool,
) -> Option<Selector> {
    let namespace_part = match (namespace_selector, scope) {
        (Some(ns_sel), _) => Some(namespaces_matching(ns_sel)),
        (None, PolicyScope::Namespace(ns)) => Some(in_namespace(ns)),
        (None, PolicyScope::Global) => None,
    };
    let says_something = selector.is_some() || has_not_selector || namespace_selector.is_some();
    match (namespace_part, selector) {
        (Some(ns_part), Some(sel)) if says_something => Some(Selector::from_expr(Expr::And(vec![
            ns_part,
            sel.expr().clone(),
        ]))),
        (Some(ns_part), None) if says_something => Some(Selector::from_expr(ns_part)),
        (_, sel) => sel.cloned(),
    }
}

/// `projectcalico.org/namespace == "ns"`.
fn in_namespace(ns: &str) -> Expr {
    Expr::Eq(NAMESPACE_LABEL.to_string(), ns.to_string())
}

/// A `namespaceSelector` rewritten to run against endpoint labels.
fn namespaces_matching(namespace_selector: &Selector) -> Expr {
    let has_namespace = Expr::Has(NAMESPACE_LABEL.to_string());
    namespace_selector
        .expr()
        .with_label_prefix(NAMESPACE_LABEL_PREFIX)
        .replace_all_and_global(&has_namespace, &Expr::negate(has_namespace.clone()))
}
