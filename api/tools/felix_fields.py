#!/usr/bin/env python3
"""Print the Rust fields and per-field checks of FelixConfigurationSpec from Calico's Go type.

Usage: git -C <calico repo> show HEAD:api/pkg/apis/projectcalico/v3/felixconfig.go \
         | api/tools/felix_fields.py > /tmp/felix_generated.rs
The output is pasted between the GENERATED markers of api/src/felix_configuration.rs.
"""
import re
import sys

src = sys.stdin.read()

# Named string types and the Enum marker just above them.
string_types = set(re.findall(r"^type (\w+) string$", src, re.M))
type_enums = {}
for m in re.finditer(r"// \+kubebuilder:validation:Enum=([^\n]+)\n(?://[^\n]*\n)*type (\w+) string", src):
    type_enums[m.group(2)] = m.group(1).rstrip(";").split(";")

body = re.search(r"^type FelixConfigurationSpec struct \{\n(.*?)^\}", src, re.M | re.S).group(1)

# Fields whose Go type is a struct or list we type by hand.
OVERRIDES = {
    "routeTableRange": "RouteTableRange",
    "routeTableRanges": "Vec<RouteTableRange>",
}

def snake(name):
    for acronym, word in (("IPv4", "Ipv4"), ("IPv6", "Ipv6"), ("IPs", "Ips"), ("CIDRs", "Cidrs")):
        name = name.replace(acronym, word)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()

fields, checks = [], []
markers = []
for line in body.splitlines():
    line = line.strip()
    if line.startswith("//"):
        markers.append(line)
        continue
    m = re.match(r'(\w+)\s+(\S+)\s+`json:"(\w+)', line)
    if not m:
        markers = []
        continue
    _, gotype, json = m.groups()
    base = gotype.lstrip("*")
    if json in OVERRIDES:
        rust, note = OVERRIDES[json], ""
    elif base == "bool":
        rust, note = "bool", ""
    elif base in ("int", "int32", "int64"):
        rust, note = "i64", ""
    elif base == "string" or base in string_types:
        rust, note = "String", ""
    elif base == "[]string":
        rust, note = "Vec<String>", ""
    elif base == "map[string]string":
        rust, note = "BTreeMap<String, String>", ""
    elif base == "metav1.Duration":
        rust, note = "Duration", ""
    else:
        rust, note = "serde_json::Value", f"    /// Go type `{gotype}`: kept as written, not typed (unused here).\n"
    fields.append(
        f"{note}    #[serde(default, rename = \"{json}\", skip_serializing_if = \"Option::is_none\")]\n"
        f"    pub {snake(json)}: Option<{rust}>,"
    )
    enum = None
    for mk in markers:
        e = re.search(r"kubebuilder:validation:Enum=(\S+)", mk)
        if e:
            enum = e.group(1).rstrip(";").split(";")
        p = re.search(r"kubebuilder:validation:Pattern=`(.*)`", mk)
        if p and rust == "String":
            checks.append(f'    ("{json}", Check::Pattern(r"{p.group(1)}")),')
    v = re.search(r'validate:"[^"]*oneof=([^",]+)', line)
    if v:
        enum = v.group(1).split()
    enum = enum or type_enums.get(base)
    if enum and rust == "String":
        items = ", ".join(f'"{x}"' for x in enum)
        checks.append(f'    ("{json}", Check::OneOf(&[{items}])),')
    markers = []

print("\n".join(fields))
print("// CHECKS")
print("\n".join(checks))
