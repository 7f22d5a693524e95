//! `-o ps` and `-o wide`: calicoctl's tables, with its columns per kind and its layout (Go's
//! `tabwriter` with minimum width 5, padding 3, every cell tab-terminated, then a blank line).
//!
//! Values are read from the resource's JSON so that they print as calicoctl's Go templates
//! print them: a missing string is empty, a missing bool is `false`, a missing pointer is
//! `<nil>`, numbers as Go's `%v`.

use api::{AnyResource, ResourceKind};
use serde_json::Value;

/// Column headings for `kind` (`ps` or `wide`), as calicoctl's resource managers register them.
pub fn headings(kind: ResourceKind, wide: bool) -> &'static [&'static str] {
    use ResourceKind::*;
    match (kind, wide) {
        (IPPool, false) => &["NAME", "CIDR", "SELECTOR"],
        (IPPool, true) => &[
            "NAME",
            "CIDR",
            "NAT",
            "IPIPMODE",
            "VXLANMODE",
            "DISABLED",
            "DISABLEBGPEXPORT",
            "SELECTOR",
            "ASSIGNMENTMODE",
        ],
        (IPReservation, false) => &["NAME"],
        (IPReservation, true) => &["NAME", "CIDRS"],
        (IPAMConfiguration, false) => &["NAME", "STRICTAFFINITY", "AUTOALLOCATEBLOCKS"],
        (IPAMConfiguration, true) => &[
            "NAME",
            "STRICTAFFINITY",
            "AUTOALLOCATEBLOCKS",
            "MAXBLOCKSPERHOST",
        ],
        (BGPPeer, _) => &["NAME", "PEERIP", "NODE", "ASN"],
        (BGPConfiguration, _) => &["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"],
        (BGPFilter, _) => &[
            "NAME",
            "NUMEXPORTV4",
            "NUMIMPORTV4",
            "NUMEXPORTV6",
            "NUMIMPORTV6",
        ],
        (Node, false) => &["NAME"],
        (Node, true) => &["NAME", "ASN", "IPV4", "IPV6"],
        (WorkloadEndpoint, false) => &["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"],
        (WorkloadEndpoint, true) => &[
            "NAME",
            "WORKLOAD",
            "NODE",
            "NETWORKS",
            "INTERFACE",
            "PROFILES",
            "NATS",
        ],
        (HostEndpoint, false) => &["NAME", "NODE"],
        (HostEndpoint, true) => &["NAME", "NODE", "INTERFACE", "IPS", "PROFILES"],
        (NetworkPolicy | GlobalNetworkPolicy, false) => &["NAME", "TIER"],
        (NetworkPolicy | GlobalNetworkPolicy, true) => &["NAME", "TIER", "ORDER", "SELECTOR"],
        (Tier, _) => &["NAME", "ORDER"],
        (Profile, false) => &["NAME"],
        (Profile, true) => &["NAME", "LABELS"],
        (NetworkSet | GlobalNetworkSet, false) => &["NAME"],
        (NetworkSet | GlobalNetworkSet, true) => &["NAME", "NETS"],
        (FelixConfiguration, _) => &["NAME"],
        (ClusterInformation, _) => &[
            "NAME",
            "CLUSTERGUID",
            "CLUSTERTYPE",
            "CALICOVERSION",
            "DATASTOREREADY",
        ],
    }
}

/// What the table needs from outside the resource: the cluster's AS number, for nodes that
/// have none of their own (calicoctl prints it in parentheses).
pub struct Context {
    pub global_as_number: String,
}

/// Render resources of one kind as calicoctl's table. `print_namespace` adds the NAMESPACE
/// column for namespaced kinds (calicoctl does when `-n` or `-A` is given).
pub fn render(
    kind: ResourceKind,
    resources: &[AnyResource],
    wide: bool,
    print_namespace: bool,
    ctx: &Context,
) -> String {
    let mut heads: Vec<&str> = headings(kind, wide).to_vec();
    if print_namespace && kind.namespaced() {
        heads.insert(0, "NAMESPACE");
    }
    let mut rows = vec![heads.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for r in resources {
        let v = serde_json::to_value(r).unwrap_or(Value::Null);
        rows.push(heads.iter().map(|h| cell(kind, h, &v, ctx)).collect());
    }
    let mut out = tabwrite(&rows);
    out.push('\n');
    out
}

/// `-o custom-columns=A,B`: any of the kind's headings (ps, wide or NAMESPACE), in the order
/// given.
pub fn render_columns(
    kind: ResourceKind,
    resources: &[AnyResource],
    columns: &[String],
    ctx: &Context,
) -> Result<String, String> {
    let mut valid: Vec<&str> = headings(kind, true).to_vec();
    for h in headings(kind, false) {
        if !valid.contains(h) {
            valid.push(h);
        }
    }
    if kind.namespaced() {
        valid.push("NAMESPACE");
    }
    if let Some(bad) = columns.iter().find(|c| !valid.contains(&c.as_str())) {
        return Err(format!(
            "unknown heading {bad}, valid values are: {}",
            valid.join(", ")
        ));
    }
    let mut rows = vec![columns.to_vec()];
    for r in resources {
        let v = serde_json::to_value(r).unwrap_or(Value::Null);
        rows.push(columns.iter().map(|h| cell(kind, h, &v, ctx)).collect());
    }
    let mut out = tabwrite(&rows);
    out.push('\n');
    Ok(out)
}

/// Go's `tabwriter.NewWriter(w, 5, 1, 3, ' ', 0)` over rows whose every cell ends in a tab.
fn tabwrite(rows: &[Vec<String>]) -> String {
    const MIN_WIDTH: usize = 5;
    const PADDING: usize = 3;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count() + PADDING)
                .max()
                .unwrap_or(0)
                .max(MIN_WIDTH)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, text) in row.iter().enumerate() {
            out.push_str(text);
            out.extend(std::iter::repeat_n(' ', widths[c] - text.chars().count()));
        }
        out.push('\n');
    }
    out
}

/// The `ipam` commands' tables: go-pretty's default style as calicoctl renders them
/// (`+---+` borders, one space of padding, a rule under the header, no rules between rows).
/// Cells are left-aligned unless `right` says otherwise for the column; headings are
/// left-aligned, except over a column with no rows, which go-pretty treats as numeric and
/// right-aligns.
pub fn boxed(headings: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    boxed_with(headings, rows, right, false)
}

/// [`boxed`] with the headings centred, as `calicoctl node status` prints them.
pub fn boxed_centered(headings: &[&str], rows: &[Vec<String>]) -> String {
    boxed_with(headings, rows, &[], true)
}

fn boxed_with(headings: &[&str], rows: &[Vec<String>], right: &[bool], center: bool) -> String {
    let widths: Vec<usize> = headings
        .iter()
        .enumerate()
        .map(|(c, h)| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let rule = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    };
    let line = |cells: &[String], right_aligned: &dyn Fn(usize) -> bool, centred: bool| {
        let mut s = String::from("|");
        for (c, w) in widths.iter().enumerate() {
            let text = cells.get(c).map(String::as_str).unwrap_or("");
            let pad = " ".repeat(w - text.chars().count());
            s.push(' ');
            if centred {
                // go-pretty centres with the odd space on the right.
                let (l, r) = pad.split_at(pad.len() / 2);
                s.push_str(l);
                s.push_str(text);
                s.push_str(r);
            } else if right_aligned(c) {
                s.push_str(&pad);
                s.push_str(text);
            } else {
                s.push_str(text);
                s.push_str(&pad);
            }
            s.push_str(" |");
        }
        s.push('\n');
        s
    };
    let heads: Vec<String> = headings.iter().map(|h| h.to_string()).collect();
    let mut out = rule.clone();
    out.push_str(&line(&heads, &|_| rows.is_empty(), center));
    out.push_str(&rule);
    for r in rows {
        out.push_str(&line(r, &|c| right.get(c).copied().unwrap_or(false), false));
    }
    out.push_str(&rule);
    out
}

/// Go's `%.5g`: five significant digits, trailing zeros dropped, an exponent (`1.2089e+24`)
/// when the decimal exponent is below -4 or at least 5.
pub fn go_g5(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let sci = format!("{f:.4e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..5).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = usize::try_from(4 - exp).unwrap_or(0);
        trim(&format!("{f:.decimals$}"))
    }
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    v.pointer(path).filter(|x| !x.is_null())
}

/// A string field: empty when absent.
fn string(v: &Value, path: &str) -> String {
    get(v, path).map(plain).unwrap_or_default()
}

/// A non-pointer bool field: `false` when absent.
fn boolean(v: &Value, path: &str) -> String {
    get(v, path).map(plain).unwrap_or_else(|| "false".into())
}

/// A pointer field: `<nil>` when absent, as Go's templates print a nil pointer.
fn pointer(v: &Value, path: &str) -> String {
    get(v, path).map(plain).unwrap_or_else(|| "<nil>".into())
}

/// A policy or tier `order`: Go's `*float64`, so `<nil>` when absent and `1e+06` for a
/// million.
fn order(v: &Value) -> String {
    match get(v, "/spec/order").and_then(Value::as_f64) {
        Some(f) => go_float(f),
        None => "<nil>".into(),
    }
}

/// A non-pointer number: `0` when absent.
fn number(v: &Value, path: &str) -> String {
    get(v, path).map(plain).unwrap_or_else(|| "0".into())
}

/// A list (or map, as `k=v` sorted) joined with `sep`, truncated past `max` with `...` as
/// calicoctl's `joinAndTruncate` does (`max` 0: no limit).
fn join(v: &Value, path: &str, sep: &str, max: usize) -> String {
    let items: Vec<String> = match get(v, path) {
        None => return String::new(),
        Some(Value::Array(a)) => a.iter().map(plain).collect(),
        Some(Value::Object(m)) => {
            let mut kv: Vec<String> = m.iter().map(|(k, x)| format!("{k}={}", plain(x))).collect();
            kv.sort();
            kv
        }
        Some(other) => vec![plain(other)],
    };
    let mut s = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(item);
        if max > 0 && s.len() > max {
            s.truncate(floor_char_boundary(&s, max - 3));
            s.push_str("...");
            break;
        }
    }
    s
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn len(v: &Value, path: &str) -> String {
    match get(v, path) {
        Some(Value::Array(a)) => a.len().to_string(),
        _ => "0".into(),
    }
}

/// A scalar as Go's `%v` prints it.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => go_float(f),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Go's `%v` for a float64: the shortest representation, switching to an exponent
/// (`1e+06`) when the decimal exponent is below -4 or at least 6, whole numbers included;
/// so calicoctl prints a tier order of 1000000 as `1e+06`.
pub fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

fn cell(kind: ResourceKind, heading: &str, v: &Value, ctx: &Context) -> String {
    use ResourceKind::*;
    match (kind, heading) {
        (_, "NAME") => string(v, "/metadata/name"),
        (_, "NAMESPACE") => string(v, "/metadata/namespace"),
        (IPPool, "CIDR") => string(v, "/spec/cidr"),
        (IPPool, "SELECTOR") => string(v, "/spec/nodeSelector"),
        (IPPool, "NAT") => boolean(v, "/spec/natOutgoing"),
        (IPPool, "IPIPMODE") => non_empty_or(string(v, "/spec/ipipMode"), "Never"),
        (IPPool, "VXLANMODE") => non_empty_or(string(v, "/spec/vxlanMode"), "Never"),
        (IPPool, "DISABLED") => boolean(v, "/spec/disabled"),
        (IPPool, "DISABLEBGPEXPORT") => boolean(v, "/spec/disableBGPExport"),
        (IPPool, "ASSIGNMENTMODE") => pointer(v, "/spec/assignmentMode"),
        (IPReservation, "CIDRS") => join(v, "/spec/reservedCIDRs", ",", 80),
        (IPAMConfiguration, "STRICTAFFINITY") => boolean(v, "/spec/strictAffinity"),
        (IPAMConfiguration, "AUTOALLOCATEBLOCKS") => boolean(v, "/spec/autoAllocateBlocks"),
        (IPAMConfiguration, "MAXBLOCKSPERHOST") => number(v, "/spec/maxBlocksPerHost"),
        (BGPPeer, "PEERIP") => string(v, "/spec/peerIP"),
        (BGPPeer, "NODE") => {
            let node = string(v, "/spec/node");
            let selector = string(v, "/spec/nodeSelector");
            match (node.is_empty(), selector.is_empty()) {
                (false, _) => node,
                (true, false) => selector,
                (true, true) => "(global)".into(),
            }
        }
        (BGPPeer, "ASN") => number(v, "/spec/asNumber"),
        (BGPConfiguration, "LOGSEVERITY") => string(v, "/spec/logSeverityScreen"),
        (BGPConfiguration, "MESHENABLED") => get(v, "/spec/nodeToNodeMeshEnabled")
            .map(plain)
            .unwrap_or_else(|| "-".into()),
        (BGPConfiguration, "ASNUMBER") => get(v, "/spec/asNumber")
            .map(plain)
            .unwrap_or_else(|| "-".into()),
        (BGPFilter, "NUMEXPORTV4") => len(v, "/spec/exportV4"),
        (BGPFilter, "NUMIMPORTV4") => len(v, "/spec/importV4"),
        (BGPFilter, "NUMEXPORTV6") => len(v, "/spec/exportV6"),
        (BGPFilter, "NUMIMPORTV6") => len(v, "/spec/importV6"),
        (Node, "ASN") => match get(v, "/spec/bgp") {
            None => String::new(),
            Some(_) => match get(v, "/spec/bgp/asNumber") {
                Some(asn) => plain(asn),
                None => format!("({})", ctx.global_as_number),
            },
        },
        (Node, "IPV4") => string(v, "/spec/bgp/ipv4Address"),
        (Node, "IPV6") => string(v, "/spec/bgp/ipv6Address"),
        (WorkloadEndpoint, "WORKLOAD") => {
            non_empty_or(string(v, "/spec/workload"), &string(v, "/spec/pod"))
        }
        (WorkloadEndpoint | HostEndpoint, "NODE") => string(v, "/spec/node"),
        (WorkloadEndpoint, "NETWORKS") => join(v, "/spec/ipNetworks", ",", 0),
        (WorkloadEndpoint, "NATS") => join(v, "/spec/ipNATs", ",", 0),
        (WorkloadEndpoint | HostEndpoint, "PROFILES") => join(v, "/spec/profiles", ",", 0),
        (WorkloadEndpoint | HostEndpoint, "INTERFACE") => string(v, "/spec/interfaceName"),
        (HostEndpoint, "IPS") => join(v, "/spec/expectedIPs", ",", 0),
        (NetworkPolicy | GlobalNetworkPolicy, "TIER") => string(v, "/spec/tier"),
        (NetworkPolicy | GlobalNetworkPolicy | Tier, "ORDER") => order(v),
        (NetworkPolicy | GlobalNetworkPolicy, "SELECTOR") => string(v, "/spec/selector"),
        (Profile, "LABELS") => join(v, "/spec/labelsToApply", ",", 0),
        (NetworkSet | GlobalNetworkSet, "NETS") => join(v, "/spec/nets", ",", 80),
        (ClusterInformation, "CLUSTERGUID") => string(v, "/spec/clusterGUID"),
        (ClusterInformation, "CLUSTERTYPE") => string(v, "/spec/clusterType"),
        (ClusterInformation, "CALICOVERSION") => string(v, "/spec/calicoVersion"),
        (ClusterInformation, "DATASTOREREADY") => pointer(v, "/spec/datastoreReady"),
        _ => String::new(),
    }
}

fn non_empty_or(s: String, default: &str) -> String {
    if s.is_empty() { default.to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_formatting() {
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(10_000_000.0), "1e+07");
        assert_eq!(go_float(100_000.0), "100000");
        assert_eq!(go_float(1000.0), "1000");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(0.00001), "1e-05");
    }

    #[test]
    fn go_g5_formatting() {
        assert_eq!(go_g5(65536.0), "65536");
        assert_eq!(go_g5(64.0), "64");
        assert_eq!(go_g5(100_000.0), "1e+05");
        assert_eq!(go_g5(1_048_576.0), "1.0486e+06");
        assert_eq!(go_g5(1.2089258196146292e24), "1.2089e+24");
        assert_eq!(go_g5(9.223372036854776e18), "9.2234e+18");
        // `%.f` (percentages) rounds ties to even, as Go does.
        assert_eq!(format!("{:.0}", 12.5), "12");
        assert_eq!(format!("{:.0}", 37.5), "38");
    }

    #[test]
    fn boxed_layout() {
        let rows = vec![vec!["IP Pool".to_string(), "64".to_string()]];
        assert_eq!(
            boxed(&["GROUPING", "IPS TOTAL"], &rows, &[false, true]),
            "+----------+-----------+\n\
             | GROUPING | IPS TOTAL |\n\
             +----------+-----------+\n\
             | IP Pool  |        64 |\n\
             +----------+-----------+\n"
        );
        assert_eq!(
            boxed(&["IP", "BLOCK"], &[], &[]),
            "+----+-------+\n| IP | BLOCK |\n+----+-------+\n+----+-------+\n"
        );
    }

    #[test]
    fn tabwriter_layout() {
        let rows = vec![
            vec!["NAME".to_string(), "CIDR".to_string()],
            vec!["default-ipv4-ippool".to_string(), "10.0.0.0/16".to_string()],
        ];
        assert_eq!(
            tabwrite(&rows),
            "NAME                  CIDR          \ndefault-ipv4-ippool   10.0.0.0/16   \n"
        );
        // Minimum cell width 5 (text plus padding).
        assert_eq!(tabwrite(&[vec!["A".to_string()]]), "A    \n");
    }

    #[test]
    fn truncation_like_calicoctl() {
        let nets: Vec<String> = (0..20).map(|i| format!("10.{i}.0.0/16")).collect();
        let v = serde_json::json!({ "spec": { "nets": nets } });
        let s = join(&v, "/spec/nets", ",", 80);
        assert_eq!(s.len(), 80);
        assert!(s.ends_with("..."));
    }
}
