//! Reading resources from what a user hands calicoctl: YAML (one or many `---` documents) or
//! JSON, a single resource, a top-level sequence of resources, or a `List`/`<Kind>List` with
//! `items`, as calicoctl accepts them.

use api::{AnyResource, ApiError};
use serde::Deserialize;
use serde_json::Value;

/// Every resource in `text`, in order. The first bad document is an error naming its position
/// in the file (and, for a bad field, the resource kind and the field's path).
pub fn parse(text: &str) -> Result<Vec<AnyResource>, ApiError> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| ApiError::Parse {
            kind: None,
            path: String::new(),
            message: format!("document {}: invalid YAML or JSON: {e}", i + 1),
        })?;
        collect(value, &mut out)?;
    }
    Ok(out)
}

fn collect(value: Value, out: &mut Vec<AnyResource>) -> Result<(), ApiError> {
    match value {
        // An empty document (e.g. a trailing `---`) holds nothing.
        Value::Null => Ok(()),
        Value::Array(items) => items.into_iter().try_for_each(|v| collect(v, out)),
        Value::Object(ref map) => match map.get("kind").and_then(Value::as_str) {
            Some(kind) if kind == "List" || kind.ends_with("List") => {
                // `<Kind>List` items may omit their own kind and apiVersion.
                let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
                let items = match map.get("items") {
                    Some(Value::Array(items)) => items.clone(),
                    None | Some(Value::Null) => Vec::new(),
                    Some(_) => {
                        return Err(ApiError::Parse {
                            kind: None,
                            path: "items".into(),
                            message: format!("{kind}.items must be a list"),
                        });
                    }
                };
                for mut item in items {
                    if let (Some(k), Value::Object(obj)) = (item_kind, &mut item) {
                        obj.entry("kind")
                            .or_insert_with(|| Value::String(k.to_string()));
                        obj.entry("apiVersion")
                            .or_insert_with(|| Value::String(api::API_VERSION.to_string()));
                    }
                    collect(item, out)?;
                }
                Ok(())
            }
            _ => {
                out.push(AnyResource::from_value(value)?);
                Ok(())
            }
        },
        other => Err(ApiError::Parse {
            kind: None,
            path: String::new(),
            message: format!("expected a resource (a map), found {other}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::{Resource, ResourceKind};

    fn names(rs: &[AnyResource]) -> Vec<(ResourceKind, String)> {
        rs.iter()
            .map(|r| (r.kind(), r.metadata().name.clone()))
            .collect()
    }

    #[test]
    fn multi_document_yaml() {
        let text = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\n\
                    spec: {cidr: 10.0.0.0/16}\n---\n---\napiVersion: projectcalico.org/v3\n\
                    kind: IPPool\nmetadata: {name: b}\nspec: {cidr: 10.1.0.0/16}\n";
        let rs = parse(text).unwrap();
        assert_eq!(
            names(&rs),
            [
                (ResourceKind::IPPool, "a".into()),
                (ResourceKind::IPPool, "b".into())
            ]
        );
    }

    #[test]
    fn json_and_lists() {
        let text = r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPoolList","items":[
            {"metadata":{"name":"a"},"spec":{"cidr":"10.0.0.0/16"}},
            {"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"b"},
             "spec":{"cidr":"10.1.0.0/16"}}]}"#;
        assert_eq!(parse(text).unwrap().len(), 2);
        let text = r#"[{"apiVersion":"projectcalico.org/v3","kind":"IPPool",
            "metadata":{"name":"a"},"spec":{"cidr":"10.0.0.0/16"}}]"#;
        assert_eq!(parse(text).unwrap().len(), 1);
    }

    #[test]
    fn errors_say_where() {
        let e = parse("kind: IPPool\nmetadata: [\n").unwrap_err();
        assert!(e.to_string().contains("document 1: invalid YAML"), "{e}");
        let e = parse("apiVersion: projectcalico.org/v3\nkind: Pool\n").unwrap_err();
        assert_eq!(e.to_string(), "resource type 'Pool' is not supported");
        let e = parse(
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\n\
             spec: {cidr: 10.0.0.0/16, bogus: 1}\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("IPPool: field spec.bogus: unknown field `bogus`"),
            "{e}"
        );
    }
}
