//! Start-up installation of an index template and an ILM policy from JSON files, only
//! when absent or different. Elasticsearch rewrites what it stores (settings flattened,
//! numbers as strings), so "different" is decided by a content hash Weir writes into the
//! resource's `_meta`, not by comparing bodies.

use elasticsearch::http::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::client::EsClient;
use super::{NamedFile, SetupConfig};

/// One kind of resource.
struct Kind {
    what: &'static str,
    path: &'static str,
    /// Where the `_meta` object sits in the body, and in a GET reply below the wrapper.
    meta_parent: &'static str,
}

const TEMPLATE: Kind = Kind {
    what: "index template",
    path: "/_index_template/",
    meta_parent: "",
};

const POLICY: Kind = Kind {
    what: "ILM policy",
    path: "/_ilm/policy/",
    meta_parent: "policy",
};

/// Installs what `[sink.setup]` names.
pub async fn install(client: &EsClient, setup: &SetupConfig) -> anyhow::Result<()> {
    if let Some(policy) = &setup.ilm_policy {
        install_one(client, &POLICY, policy).await?;
    }
    if let Some(template) = &setup.index_template {
        install_one(client, &TEMPLATE, template).await?;
    }
    Ok(())
}

async fn install_one(client: &EsClient, kind: &Kind, named: &NamedFile) -> anyhow::Result<()> {
    let fail = |m: String| anyhow::anyhow!("sink.setup: {} `{}`: {m}", kind.what, named.name);
    let text =
        std::fs::read(&named.file).map_err(|e| fail(format!("{}: {e}", named.file.display())))?;
    let mut body: Value = serde_json::from_slice(&text)
        .map_err(|e| fail(format!("{}: not JSON: {e}", named.file.display())))?;
    let hash = hex(&Sha256::digest(&text));
    let meta = meta_of(&mut body, kind.meta_parent)
        .ok_or_else(|| fail(format!("{}: expected a JSON object", named.file.display())))?;
    meta.insert("managed_by".into(), "weir".into());
    meta.insert("weir_sha256".into(), hash.clone().into());

    let path = format!("{}{}", kind.path, named.name);
    let current = client
        .request(Method::Get, &path, None)
        .await
        .map_err(|e| fail(format!("GET {path}: {e}")))?;
    if current.status == 200 && stored_hash(&current.body, kind, &named.name) == Some(hash) {
        tracing::info!(
            "elasticsearch: {} `{}` is up to date",
            kind.what,
            named.name
        );
        return Ok(());
    }
    if current.status != 200 && current.status != 404 {
        return Err(fail(format!(
            "GET {path}: HTTP {}: {}",
            current.status,
            String::from_utf8_lossy(&current.body)
        )));
    }
    let reply = client
        .request(Method::Put, &path, Some(body.to_string().into_bytes()))
        .await
        .map_err(|e| fail(format!("PUT {path}: {e}")))?;
    if !(200..300).contains(&reply.status) {
        return Err(fail(format!(
            "PUT {path}: HTTP {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )));
    }
    tracing::info!("elasticsearch: installed {} `{}`", kind.what, named.name);
    Ok(())
}

/// The `_meta` object of a body, created if missing.
fn meta_of<'a>(
    body: &'a mut Value,
    parent: &str,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    let holder = if parent.is_empty() {
        body
    } else {
        body.get_mut(parent)?
    };
    let map = holder.as_object_mut()?;
    map.entry("_meta")
        .or_insert_with(|| Value::Object(Default::default()))
        .as_object_mut()
}

/// The hash recorded in a GET reply: `{"index_templates":[{"name","index_template":{..}}]}`
/// for templates (or `{"<name>":{..}}`, as some emulators answer), `{"<name>":{"policy":
/// {..}}}` for ILM policies.
fn stored_hash(reply: &[u8], kind: &Kind, name: &str) -> Option<String> {
    let reply: Value = serde_json::from_slice(reply).ok()?;
    let resource = if kind.meta_parent.is_empty() {
        match reply.get("index_templates").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some(name))?
                .get("index_template")?,
            None => reply.get(name)?,
        }
    } else {
        reply.get(name)?.get(kind.meta_parent)?
    };
    Some(
        resource
            .get("_meta")?
            .get("weir_sha256")?
            .as_str()?
            .to_owned(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hashes_are_read_back_from_both_reply_shapes() {
        let template = json!({"index_templates": [{"name": "python-logs", "index_template": {"_meta": {"weir_sha256": "abc"}}}]});
        assert_eq!(
            stored_hash(template.to_string().as_bytes(), &TEMPLATE, "python-logs").as_deref(),
            Some("abc")
        );
        let policy =
            json!({"p": {"version": 1, "policy": {"phases": {}, "_meta": {"weir_sha256": "def"}}}});
        assert_eq!(
            stored_hash(policy.to_string().as_bytes(), &POLICY, "p").as_deref(),
            Some("def")
        );
        assert_eq!(stored_hash(b"{}", &POLICY, "p"), None);
        let flat = json!({"python-logs": {"_meta": {"weir_sha256": "abc"}}});
        assert_eq!(
            stored_hash(flat.to_string().as_bytes(), &TEMPLATE, "python-logs").as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn meta_goes_where_each_api_keeps_it() {
        let mut t = json!({"index_patterns": ["x-*"]});
        meta_of(&mut t, "").unwrap().insert("k".into(), 1.into());
        assert_eq!(t["_meta"]["k"], 1);
        let mut p = json!({"policy": {"phases": {}}});
        meta_of(&mut p, "policy")
            .unwrap()
            .insert("k".into(), 1.into());
        assert_eq!(p["policy"]["_meta"]["k"], 1);
        assert!(meta_of(&mut json!([1]), "").is_none());
    }
}
