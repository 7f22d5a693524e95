use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::select;

use super::parser::{MAX_KEY_LEN, MAX_NESTING};
use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn canonical(input: &str) -> String {
    match parse(input) {
        Ok(selector) => selector.to_string(),
        Err(e) => panic!("{e}"),
    }
}

fn error_at(input: &str) -> (usize, String) {
    match parse(input) {
        Ok(selector) => panic!("{input:?} parsed as {selector}"),
        Err(e) => (e.position, e.reason),
    }
}

// ---- evaluation, per operator -------------------------------------------------------------

/// Cases from Calico's parser_test.go `selectorTests`: (selector, matching, non-matching).
#[test]
fn evaluates_like_calico() {
    type Case = (
        &'static str,
        Vec<Vec<(&'static str, &'static str)>>,
        Vec<Vec<(&'static str, &'static str)>>,
    );
    let cases: Vec<Case> = vec![
        (
            r#"a == "b""#,
            vec![vec![("a", "b")], vec![("a", "b"), ("c", "d")]],
            vec![vec![], vec![("a", "c")], vec![("c", "d")]],
        ),
        (
            r#"a == "b" && c == "d""#,
            vec![vec![("a", "b"), ("c", "d")]],
            vec![
                vec![],
                vec![("a", "b"), ("c", "e")],
                vec![("c", "d")],
                vec![("a", "b")],
            ],
        ),
        (
            r#"a == "b" || c == "d""#,
            vec![
                vec![("a", "b"), ("c", "d")],
                vec![("a", "b")],
                vec![("c", "d")],
            ],
            vec![vec![], vec![("a", "e"), ("c", "e")]],
        ),
        (
            r#"a in {"'", '"', "c"}"#,
            vec![vec![("a", "c")], vec![("a", "\"")], vec![("a", "'")]],
            vec![vec![], vec![("a", "e")]],
        ),
        (
            r#"a not in {"'", '"', "c"}"#,
            vec![vec![], vec![("a", "e")]],
            vec![vec![("a", "c")], vec![("a", "\"")], vec![("a", "'")]],
        ),
        (
            "a != 'b'",
            vec![vec![("a", "a")], vec![]],
            vec![vec![("a", "b")]],
        ),
        (
            "a contains 'a'",
            vec![vec![("a", "a")], vec![("a", "bab")]],
            vec![vec![], vec![("a", "b")], vec![("b", "aaa")]],
        ),
        (
            "a contains ''",
            vec![vec![("a", "")], vec![("a", "x")]],
            vec![vec![]],
        ),
        (
            "a starts with 'a'",
            vec![vec![("a", "a")], vec![("a", "abb")]],
            vec![vec![], vec![("a", "baa")], vec![("b", "aaa")]],
        ),
        (
            "a ends with 'a'",
            vec![vec![("a", "a")], vec![("a", "bba")]],
            vec![vec![], vec![("a", "aab")], vec![("b", "aaa")]],
        ),
        (
            "!a in {'a'}",
            vec![vec![("a", "b")], vec![]],
            vec![vec![("a", "a")]],
        ),
        ("a in {}", vec![], vec![vec![], vec![("a", "")]]),
        ("a not in {}", vec![vec![], vec![("a", "")]], vec![]),
        (
            "has(a)",
            vec![vec![("a", "")]],
            vec![vec![], vec![("b", "a")]],
        ),
        ("!has(a)", vec![vec![("b", "b")]], vec![vec![("a", "")]]),
        ("!!has(b)", vec![vec![("b", "")]], vec![vec![("a", "b")]]),
        ("!! ! has(a)", vec![vec![]], vec![vec![("a", "b")]]),
        ("", vec![vec![], vec![("a", "b")]], vec![]),
        (" \t", vec![vec![]], vec![]),
        ("all()", vec![vec![], vec![("a", "b")]], vec![]),
        ("global()", vec![vec![], vec![("a", "b")]], vec![]),
        ("!all()", vec![], vec![vec![], vec![("a", "b")]]),
        (
            "!(!has(a) || has(b))",
            vec![vec![("a", "a")]],
            vec![vec![("a", "a"), ("b", "b")], vec![]],
        ),
        (
            "a != 'a1' && !b == 'b1'",
            vec![vec![("b", "b2")]],
            vec![vec![("a", "a1"), ("b", "b1")]],
        ),
        (
            "! a == 'a1' || ! b == 'b1'",
            vec![vec![("a", "a1")]],
            vec![vec![("a", "a1"), ("b", "b1")]],
        ),
        (
            "projectcalico.org/namespace == 'prod'",
            vec![vec![("projectcalico.org/namespace", "prod")]],
            vec![vec![("namespace", "prod")]],
        ),
    ];
    for (input, matching, non_matching) in cases {
        let selector = parse(input).unwrap_or_else(|e| panic!("{e}"));
        let reparsed = parse(&selector.to_string()).unwrap_or_else(|e| panic!("{e}"));
        for pairs in &matching {
            assert!(
                selector.evaluate(&labels(pairs)),
                "{input} should match {pairs:?}"
            );
            assert!(
                reparsed.evaluate(&labels(pairs)),
                "{selector} should match {pairs:?}"
            );
        }
        for pairs in &non_matching {
            assert!(
                !selector.evaluate(&labels(pairs)),
                "{input} should not match {pairs:?}"
            );
            assert!(
                !reparsed.evaluate(&labels(pairs)),
                "{selector} should not match {pairs:?}"
            );
        }
    }
}

#[test]
fn and_binds_tighter_than_or() {
    let selector = parse("a == 'x' || b == 'x' && c == 'x'").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        selector.to_string(),
        r#"(a == "x" || (b == "x" && c == "x"))"#
    );
    assert!(selector.evaluate(&labels(&[("a", "x")])));
    assert!(!selector.evaluate(&labels(&[("b", "x")])));
}

// ---- canonical form -----------------------------------------------------------------------

#[test]
fn prints_calicos_canonical_form() {
    // From Calico's parser_test.go `canonicalisationTests` and visitor tests.
    let cases = [
        ("", "all()"),
        (" all() ", "all()"),
        (" (all() )", "all()"),
        (" global( )", "global()"),
        ("! (has( b)||! has(a ))", "!(has(b) || !has(a))"),
        (r#"! (a == "b"&&! c != "d")"#, r#"!(a == "b" && !c != "d")"#),
        (r#"a == "'""#, r#"a == "'""#),
        (r#"a == '"'"#, r#"a == '"'"#),
        (r#"a contains '"'"#, r#"a contains '"'"#),
        (r#"a startswith '"'"#, r#"a starts with '"'"#),
        (r#"a endswith "'""#, r#"a ends with "'""#),
        (r#"a!='"'"#, r#"a != '"'"#),
        (
            r#"a in {"z", "z", "x", "y", "x", "a"}"#,
            r#"a in {"a", "x", "y", "z"}"#,
        ),
        ("a notin{'b',}", r#"a not in {"b"}"#),
        ("a in { }", "a in {}"),
        ("!(k == 'v')", r#"!k == "v""#),
        (
            "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
            r#"!(!((k == "v" && has(t)) || all()) && a in {"b", "c"})"#,
        ),
        (
            "(a == 'x' && b == 'x') && c == 'x'",
            r#"((a == "x" && b == "x") && c == "x")"#,
        ),
        (
            "a == 'x' && b == 'x' && c == 'x'",
            r#"(a == "x" && b == "x" && c == "x")"#,
        ),
        ("\ta\t==\t'x'\t", r#"a == "x""#),
        ("a == 'é ✓'", r#"a == "é ✓""#),
    ];
    for (input, expected) in cases {
        assert_eq!(canonical(input), expected, "canonical form of {input:?}");
        assert_eq!(
            canonical(expected),
            expected,
            "canonical form is a fixed point"
        );
    }
}

#[test]
fn double_negation_disappears() {
    // Calico folds `!!x` while parsing; we also fold `!(!x)`, so printing is idempotent.
    assert_eq!(canonical("!!has(a)"), "has(a)");
    assert_eq!(canonical("!(!has(a))"), "has(a)");
    assert_eq!(canonical("!(!(!has(a)))"), "!has(a)");
}

#[test]
fn label_keys_follow_calico() {
    for key in [
        "projectcalico.org/namespace",
        "app.kubernetes.io/name",
        "a-b_c.d/e",
        "1",
        "-",
        "has",
        "all",
        "in",
        "not",
    ] {
        let input = format!("{key} == 'v'");
        assert_eq!(canonical(&input), format!(r#"{key} == "v""#));
        assert_eq!(canonical(&format!("has({key})")), format!("has({key})"));
    }
    assert_eq!(canonical("not in {'a'}"), r#"not in {"a"}"#);
    let longest = "k".repeat(MAX_KEY_LEN);
    assert!(parse(&format!("has({longest})")).is_ok());
    assert_eq!(
        error_at(&format!("has({longest}k)")),
        (4, "label is longer than 512 characters".to_string())
    );
}

#[test]
fn all_helpers() {
    assert!(Selector::all().is_all());
    assert!(Selector::default().is_all());
    assert_eq!(parse("").ok(), Some(Selector::all()));
    assert!(parse("all()").is_ok_and(|s| s.is_all()));
    assert!(parse("global()").is_ok_and(|s| !s.is_all()));
    assert!(parse("has(a)").is_ok_and(|s| s.expr() == &Expr::Has("a".to_string())));
}

// ---- errors -------------------------------------------------------------------------------

#[test]
fn rejects_nonsense_with_position() {
    let expected_expr = "expected a label, '!', '(', 'has(', 'all(' or 'global('";
    let end = "unexpected end of selector, expected an expression";
    let trailing = "expected '&&', '||' or end of selector";
    let string = "expected a quoted string";
    let op = |key: &str| {
        format!(
            "expected an operator (==, !=, in, not in, contains, starts with, ends with) after \
             label '{key}'"
        )
    };
    let cases: Vec<(&str, usize, String)> = vec![
        // Calico's parser_test.go `badSelectors`.
        ("b == b", 5, string.into()),
        ("b contains b", 11, string.into()),
        ("b starts with b", 14, string.into()),
        ("b ends with b", 12, string.into()),
        ("'b1' == b", 0, expected_expr.into()),
        ("b", 1, op("b")),
        ("a b", 2, op("a")),
        ("!", 1, end.into()),
        (r#"foo == "bar" &"#, 13, trailing.into()),
        (r#"foo == "bar" |"#, 13, trailing.into()),
        ("foo != ||", 7, string.into()),
        (
            r#"foo in {"", ||"#,
            12,
            "expected a quoted string or '}'".into(),
        ),
        (
            r#"foo in """#,
            7,
            "expected '{' to start a set of values".into(),
        ),
        (r#""FOO"#, 0, expected_expr.into()),
        ("(", 1, end.into()),
        (r#"(a == "foo""#, 11, "expected ')', '&&' or '||'".into()),
        (")", 0, expected_expr.into()),
        ("()", 1, expected_expr.into()),
        ("%", 0, expected_expr.into()),
        (r#"a == "b" && %"#, 12, expected_expr.into()),
        (r#"a == "b" || %"#, 12, expected_expr.into()),
        ("a ", 2, op("a")),
        ("has(foo) &&", 11, end.into()),
        // Ours.
        (r#"a == "FOO"#, 5, "unterminated string".into()),
        ("a == 'FOO\"", 5, "unterminated string".into()),
        ("a in {'x', 'y}", 11, "unterminated string".into()),
        ("a = 'b'", 2, op("a")),
        ("a === 'b'", 4, string.into()),
        ("a inx {}", 2, op("a")),
        ("a containsx 'b'", 2, op("a")),
        ("a starts 'b'", 2, op("a")),
        ("a in {'a' 'b'}", 10, "expected ',' or '}'".into()),
        ("a in {,}", 6, "expected a quoted string or '}'".into()),
        ("a in {'a',,}", 10, "expected a quoted string or '}'".into()),
        ("a in {'a'", 9, "expected ',' or '}'".into()),
        ("has(", 4, "expected a label inside 'has()'".into()),
        ("has()", 4, "expected a label inside 'has()'".into()),
        ("has(a", 5, "expected ')' to close 'has('".into()),
        ("has(a b)", 6, "expected ')' to close 'has('".into()),
        ("has (a)", 4, op("has")),
        ("all(x)", 4, "expected ')' after 'all('".into()),
        ("global(", 7, "expected ')' after 'global('".into()),
        ("all() all()", 6, trailing.into()),
        ("has(a))", 6, trailing.into()),
        ("a == 'b'\n", 8, trailing.into()),
        ("\na == 'b'", 0, expected_expr.into()),
        ("has(a) & has(b)", 7, trailing.into()),
        ("!= 'a'", 0, expected_expr.into()),
        ("é == 'a'", 0, expected_expr.into()),
        ("a == 'é' && é", 13, expected_expr.into()),
    ];
    for (input, position, reason) in cases {
        assert_eq!(error_at(input), (position, reason), "error for {input:?}");
    }
}

#[test]
fn error_message_says_where() {
    let err = parse("a == b").err();
    assert_eq!(
        err.map(|e| e.to_string()),
        Some("invalid selector 'a == b': expected a quoted string at position 5".to_string())
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let ok = format!(
        "{}has(a){}",
        "(".repeat(MAX_NESTING),
        ")".repeat(MAX_NESTING)
    );
    assert_eq!(canonical(&ok), "has(a)");
    let deep = format!(
        "{}has(a){}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    assert_eq!(
        error_at(&deep),
        (MAX_NESTING, "parentheses nested too deeply".to_string())
    );
    let hostile = "(".repeat(100_000);
    assert_eq!(error_at(&hostile).0, MAX_NESTING);
    let bangs = format!("{}has(a)", "!".repeat(100_001));
    assert_eq!(canonical(&bangs), "!has(a)");
}

// ---- properties ---------------------------------------------------------------------------

/// Small alphabets, so generated selectors and label maps actually meet.
const KEYS: &[&str] = &[
    "a",
    "b",
    "projectcalico.org/namespace",
    "app.kubernetes.io/name",
];
const VALUES: &[&str] = &["", "x", "y", "xy", "yx", "x'y", "\"q\"", "é"];

fn small_key() -> BoxedStrategy<String> {
    select(KEYS).prop_map(String::from).boxed()
}

fn small_value() -> BoxedStrategy<String> {
    select(VALUES).prop_map(String::from).boxed()
}

fn any_key() -> BoxedStrategy<String> {
    prop_oneof![small_key(), "[A-Za-z0-9_./-]{1,12}"].boxed()
}

/// Any value the language can spell: everything except both quote characters at once.
fn any_value() -> BoxedStrategy<String> {
    prop_oneof![
        small_value(),
        "[a-z0-9 '(){},&|!=.\t]{0,8}",
        "[a-z0-9 \"(){},&|!=.\t]{0,8}",
        "\\PC{0,6}".prop_filter("both quotes", |v| !(v.contains('"') && v.contains('\''))),
    ]
    .boxed()
}

/// Expressions in the shape the parser produces: no `!!`, `&&`/`||` with two or more operands.
fn expr(key: BoxedStrategy<String>, value: BoxedStrategy<String>) -> impl Strategy<Value = Expr> {
    let set = proptest::collection::btree_set(value.clone(), 0..4);
    let leaf = prop_oneof![
        Just(Expr::All),
        Just(Expr::Global),
        key.clone().prop_map(Expr::Has),
        (key.clone(), value.clone()).prop_map(|(key, value)| Expr::Eq { key, value }),
        (key.clone(), value.clone()).prop_map(|(key, value)| Expr::Ne { key, value }),
        (key.clone(), value.clone()).prop_map(|(key, value)| Expr::Contains { key, value }),
        (key.clone(), value.clone()).prop_map(|(key, value)| Expr::StartsWith { key, value }),
        (key.clone(), value).prop_map(|(key, value)| Expr::EndsWith { key, value }),
        (key.clone(), set.clone()).prop_map(|(key, values)| Expr::In { key, values }),
        (key, set).prop_map(|(key, values)| Expr::NotIn { key, values }),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Expr::negate),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            proptest::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(small_key(), small_value(), 0..4)
}

/// Deliberately naive: scans the label list instead of looking keys up, compares bytes by hand.
fn reference_evaluate(expr: &Expr, labels: &BTreeMap<String, String>) -> bool {
    let value_of = |key: &str| -> Option<&str> {
        let mut found = None;
        for (k, v) in labels {
            if k == key {
                found = Some(v.as_str());
            }
        }
        found
    };
    let bytes_match_at = |haystack: &[u8], needle: &[u8], at: usize| -> bool {
        at + needle.len() <= haystack.len()
            && (0..needle.len()).all(|i| haystack[at + i] == needle[i])
    };
    match expr {
        Expr::All | Expr::Global => true,
        Expr::Has(key) => value_of(key).is_some(),
        Expr::Eq { key, value } => value_of(key) == Some(value.as_str()),
        Expr::Ne { key, value } => value_of(key) != Some(value.as_str()),
        Expr::Contains { key, value } => match value_of(key) {
            None => false,
            Some(v) => (0..=v.len()).any(|at| bytes_match_at(v.as_bytes(), value.as_bytes(), at)),
        },
        Expr::StartsWith { key, value } => {
            value_of(key).is_some_and(|v| bytes_match_at(v.as_bytes(), value.as_bytes(), 0))
        }
        Expr::EndsWith { key, value } => value_of(key).is_some_and(|v| {
            v.len() >= value.len()
                && bytes_match_at(v.as_bytes(), value.as_bytes(), v.len() - value.len())
        }),
        Expr::In { key, values } => match value_of(key) {
            None => false,
            Some(v) => values.iter().any(|x| x == v),
        },
        Expr::NotIn { key, values } => match value_of(key) {
            None => true,
            Some(v) => !values.iter().any(|x| x == v),
        },
        Expr::Not(inner) => !reference_evaluate(inner, labels),
        Expr::And(operands) => {
            let mut result = true;
            for operand in operands {
                result = result && reference_evaluate(operand, labels);
            }
            result
        }
        Expr::Or(operands) => {
            let mut result = false;
            for operand in operands {
                result = result || reference_evaluate(operand, labels);
            }
            result
        }
    }
}

/// Choices for the noisy printer, consumed round-robin.
struct Noise {
    bytes: Vec<u8>,
    next: usize,
}

impl Noise {
    fn pick(&mut self, n: u8) -> u8 {
        let byte = self
            .bytes
            .get(self.next % self.bytes.len().max(1))
            .copied()
            .unwrap_or(0);
        self.next += 1;
        byte % n
    }

    fn ws(&mut self) -> &'static str {
        ["", "", " ", "\t", "  \t "][usize::from(self.pick(5))]
    }

    fn ws1(&mut self) -> &'static str {
        [" ", "\t", "  \t "][usize::from(self.pick(3))]
    }

    fn quote(&mut self, value: &str) -> String {
        let quote = if value.contains('"') {
            '\''
        } else if value.contains('\'') || self.pick(2) == 0 {
            '"'
        } else {
            '\''
        };
        format!("{quote}{value}{quote}")
    }
}

/// Prints `expr` the way a person might write it: random spacing and quotes, redundant
/// parentheses and double negations, unsorted sets with duplicates and trailing commas, the
/// `startswith`/`notin` spellings. Parsing the result must still give `expr`.
fn noisy(expr: &Expr, n: &mut Noise) -> String {
    match n.pick(6) {
        0 => format!("({}{}{})", n.ws(), noisy_inner(expr, n), n.ws()),
        1 => format!("!!{}{}", n.ws(), noisy_inner(expr, n)),
        _ => noisy_inner(expr, n),
    }
}

fn noisy_inner(expr: &Expr, n: &mut Noise) -> String {
    let compare = |n: &mut Noise, key: &str, ops: &[&str], value: &str, word: bool| {
        let op = ops[usize::from(n.pick(ops.len() as u8))];
        let before = if word { n.ws1() } else { n.ws() };
        format!("{key}{before}{op}{}{}", n.ws(), n.quote(value))
    };
    match expr {
        Expr::All => format!("all({})", n.ws()),
        Expr::Global => format!("global({})", n.ws()),
        Expr::Has(key) => format!("has({}{key}{})", n.ws(), n.ws()),
        Expr::Eq { key, value } => compare(n, key, &["=="], value, false),
        Expr::Ne { key, value } => compare(n, key, &["!="], value, false),
        Expr::Contains { key, value } => compare(n, key, &["contains"], value, true),
        Expr::StartsWith { key, value } => compare(
            n,
            key,
            &["starts with", "startswith", "starts \t with"],
            value,
            true,
        ),
        Expr::EndsWith { key, value } => compare(n, key, &["ends with", "endswith"], value, true),
        Expr::In { key, values } | Expr::NotIn { key, values } => {
            let op = match expr {
                Expr::In { .. } => "in",
                _ => ["not in", "notin", "not  in"][usize::from(n.pick(3))],
            };
            let mut items: Vec<&String> = values.iter().rev().collect();
            if let Some(first) = values.iter().next()
                && n.pick(2) == 0
            {
                items.push(first);
            }
            let mut set = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    set.push_str(&format!("{},{}", n.ws(), n.ws()));
                }
                set.push_str(&n.quote(item));
            }
            if !items.is_empty() && n.pick(3) == 0 {
                set.push(',');
            }
            format!(
                "{key}{}{op}{}{{{}{set}{}}}",
                n.ws1(),
                n.ws(),
                n.ws(),
                n.ws()
            )
        }
        Expr::Not(inner) => format!("!{}{}", n.ws(), noisy(inner, n)),
        Expr::And(operands) | Expr::Or(operands) => {
            let op = if matches!(expr, Expr::And(_)) {
                "&&"
            } else {
                "||"
            };
            let parts: Vec<String> = operands.iter().map(|o| noisy(o, n)).collect();
            let sep = format!("{}{op}{}", n.ws(), n.ws());
            format!("({}{}{})", n.ws(), parts.join(&sep), n.ws())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn canonical_form_round_trips(expr in expr(any_key(), any_value())) {
        let text = expr.to_string();
        let parsed = parse(&text);
        prop_assert_eq!(parsed.as_ref().map(Selector::expr), Ok(&expr), "{}", text);
        prop_assert_eq!(parsed.map(|s| s.to_string()), Ok(text));
    }

    #[test]
    fn noisy_spellings_parse_to_the_same_selector(
        expr in expr(any_key(), any_value()),
        bytes in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut noise = Noise { bytes, next: 0 };
        let text = format!("{}{}{}", noise.ws(), noisy(&expr, &mut noise), noise.ws());
        let parsed = parse(&text);
        prop_assert_eq!(parsed.as_ref().map(Selector::expr), Ok(&expr), "{}", text);
    }

    #[test]
    fn evaluation_agrees_with_reference(
        expr in expr(small_key(), small_value()),
        labels in label_map(),
    ) {
        let text = expr.to_string();
        let selector = parse(&text);
        prop_assert!(selector.is_ok(), "{} does not parse", text);
        if let Ok(selector) = selector {
            prop_assert_eq!(selector.evaluate(&labels), reference_evaluate(&expr, &labels), "{}", text);
        }
    }

    #[test]
    fn arbitrary_input_never_panics(input in "[a-z/.!=&|(){},'\" \t\n%é-]{0,40}|\\PC{0,40}") {
        match parse(&input) {
            Ok(selector) => {
                let text = selector.to_string();
                prop_assert_eq!(parse(&text), Ok(selector));
            }
            Err(e) => {
                prop_assert!(e.position <= input.len());
                prop_assert!(input.is_char_boundary(e.position));
            }
        }
    }
}

#[test]
fn sets_are_sorted_and_deduplicated() {
    let selector = parse("a in {'b', 'a', 'b'}").unwrap_or_else(|e| panic!("{e}"));
    let expected: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        selector.expr(),
        &Expr::In {
            key: "a".to_string(),
            values: expected
        }
    );
}
