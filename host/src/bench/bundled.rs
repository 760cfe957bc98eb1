//! The four bundled plugins' work written natively on `serde_json::Value`, in the same
//! order and with the same helpers (level tables, timestamp parser, path patterns,
//! redaction rules, route conditions, the same MMDB lookup), so that `weir bench --suite
//! bundled` compares like with like. The bench checks the outputs are byte-identical.
//! Email masking is written here from the redact plugin's README (the seeds' Logstash
//! `gsub`), not with the plugin's code, so the check can catch that code going wrong.

use std::net::IpAddr;
use std::path::Path;

use regex::Regex;
use serde_json::{Map, Value as Json};
use weir_normalize::{level, path, timestamp};
use weir_redact::rules::Rule as RedactRule;
use weir_route::rules::{seed_rules, Rule as RouteRule};
use weir_wire::mmdb::{locate, open_file, FileReader};
use weir_wire::Value;

const NUMERIC: [&str; 3] = ["duration_ms", "status_code", "performance.duration_ms"];

/// An email-looking substring, as `plugins/redact/README.md` defines it.
const EMAIL: &str = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}";

/// Characters of an address's local part left visible (`visible_chars`, default 3).
const VISIBLE: usize = 3;

/// The seeds' `gsub => ["email", "(?<=.{3}).+(?=@)", "***"]`: everything between the
/// first three characters and the `@` becomes `***`; `None` when there is nothing to mask.
fn mask_address(address: &str) -> Option<String> {
    let at = address.rfind('@')?;
    let local = &address[..at];
    let (cut, _) = local.char_indices().nth(VISIBLE)?;
    Some(format!("{}***{}", &local[..cut], &address[at..]))
}

/// `text` with every address in it masked, or `None` when none was.
fn mask_addresses_in(email: &Regex, text: &str) -> Option<String> {
    let mut changed = false;
    let masked = email.replace_all(text, |found: &regex::Captures<'_>| {
        let whole = &found[0];
        match mask_address(whole) {
            Some(masked) => {
                changed = true;
                masked
            }
            None => whole.to_owned(),
        }
    });
    changed.then(|| masked.into_owned())
}

/// Everything the native chain needs, built once.
pub struct Native {
    aliases: std::collections::BTreeMap<String, String>,
    path_rules: Vec<path::Rule>,
    geo: FileReader,
    redact_rules: Vec<RedactRule>,
    email: Regex,
    route_rules: Vec<RouteRule>,
    /// redact's default secret keys.
    secret_keys: Vec<String>,
}

impl Native {
    /// Builds the reference with the configs [`plugins_toml`] gives the plugins.
    pub fn new(geoip_db: &Path) -> anyhow::Result<Self> {
        let hex = path::Rule::compile(0, &path::RuleConfig::Builtin("hex".into()))
            .map_err(anyhow::Error::msg)?;
        let redact_rules = weir_redact::rules::BUILTINS
            .iter()
            .enumerate()
            .map(|(i, n)| RedactRule::builtin(i, n))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        Ok(Native {
            aliases: level::default_aliases(),
            path_rules: vec![hex],
            geo: open_file(geoip_db).map_err(anyhow::Error::msg)?,
            redact_rules,
            email: Regex::new(EMAIL)?,
            route_rules: seed_rules(),
            secret_keys: weir_redact::Config::default().secret_keys,
        })
    }

    /// Parses, runs the four stages, serialises survivors with their route.
    pub fn process(&self, lines: &[String], out: &mut Vec<u8>) {
        for line in lines {
            let Ok(mut event) = serde_json::from_str::<Json>(line) else {
                continue;
            };
            let Json::Object(map) = &mut event else {
                continue;
            };
            self.normalize(map);
            self.geoip(map);
            self.redact(map);
            let Some(route) = self.route(map) else {
                continue;
            };
            map.insert("route".into(), Json::String(route));
            let _ = serde_json::to_writer(&mut *out, &event);
            out.push(b'\n');
        }
    }

    fn normalize(&self, map: &mut Map<String, Json>) {
        let canonical = match map.get("level") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) if level::CANONICAL.contains(&s.as_str()) => None,
            Some(Json::String(s)) => Some(level::canonical(s, &self.aliases)),
            Some(v) => Some(v.as_f64().and_then(level::from_number).map(str::to_owned)),
        };
        match canonical {
            Some(Some(c)) => {
                map.insert("level".into(), Json::String(c));
            }
            Some(None) => add_tag(map, weir_normalize::TAG_UNKNOWN_LEVEL),
            None => {}
        }
        let parsed = match map.get("timestamp") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(timestamp::parse_text(s)),
            Some(v) => Some(v.as_f64().and_then(timestamp::parse_epoch)),
        };
        match parsed {
            Some(Some(dt)) => {
                map.insert("@timestamp".into(), Json::String(timestamp::format(dt)));
            }
            Some(None) => add_tag(map, weir_normalize::TAG_TIMESTAMP),
            None => {}
        }
        if let Some(p) = map.get("path").and_then(Json::as_str) {
            let pattern = path::pattern(p, &self.path_rules);
            map.insert("path_pattern".into(), Json::String(pattern));
        }
        for field in NUMERIC {
            coerce(map, field);
        }
    }

    fn geoip(&self, map: &mut Map<String, Json>) {
        let text = map.get("client_ip").and_then(Json::as_str).or_else(|| {
            map.get("context")
                .and_then(|c| c.get("client_ip"))
                .and_then(Json::as_str)
        });
        let Some(text) = text else { return };
        let Ok(ip) = text.trim().parse::<IpAddr>() else {
            return add_tag(map, weir_geoip::TAG_INVALID);
        };
        if weir_geoip::is_private(ip) {
            return add_tag(map, weir_geoip::TAG_PRIVATE);
        }
        let Ok(Some(l)) = locate(&self.geo, ip, "en") else {
            return add_tag(map, weir_geoip::TAG_NOT_FOUND);
        };
        let mut geo = Map::new();
        for (k, v) in [
            ("country_iso_code", l.country_iso_code),
            ("country_name", l.country_name),
            ("region", l.region),
            ("city_name", l.city_name),
        ] {
            if let Some(v) = v {
                geo.insert(k.into(), Json::String(v));
            }
        }
        if let (Some(lat), Some(lon)) = (l.latitude, l.longitude) {
            geo.insert(
                "location".into(),
                serde_json::json!({"lat": lat, "lon": lon}),
            );
        }
        if let Some(asn) = l.asn {
            geo.insert("asn".into(), Json::from(asn));
        }
        if let Some(org) = l.org {
            geo.insert("org".into(), Json::String(org));
        }
        map.insert("geo".into(), Json::Object(geo));
    }

    fn redact(&self, map: &mut Map<String, Json>) {
        super::native::remove_keys(map, &self.secret_keys);
        if let Some(masked) = map
            .get("email")
            .and_then(Json::as_str)
            .and_then(mask_address)
        {
            map.insert("email".into(), Json::String(masked));
        }
        if let Some(Json::Object(user)) = map.get_mut("user") {
            if let Some(masked) = user
                .get("email")
                .and_then(Json::as_str)
                .and_then(mask_address)
            {
                user.insert("email".into(), Json::String(masked));
            }
        }
        for field in ["message", "error_message", "exception.message"] {
            let masks_emails = field == "message";
            let Some(slot) = get_mut(map, field) else {
                continue;
            };
            let Some(text) = slot.as_str() else { continue };
            let mut current = None;
            if masks_emails {
                current = mask_addresses_in(&self.email, text);
            }
            for rule in &self.redact_rules {
                if let Some(next) = rule.apply(current.as_deref().unwrap_or(text)) {
                    current = Some(next);
                }
            }
            if let Some(current) = current {
                *slot = Json::String(current);
            }
        }
    }

    fn route(&self, map: &mut Map<String, Json>) -> Option<String> {
        let mut route: Option<String> = None;
        for rule in &self.route_rules {
            let holds = rule
                .when
                .iter()
                .all(|c| c.holds(lookup(map, &c.field).map(as_wire)));
            if !holds {
                continue;
            }
            if rule.drop {
                return None;
            }
            for (field, value) in &rule.set {
                map.insert(field.clone(), value.clone());
            }
            if let Some(tag) = &rule.tag {
                add_tag(map, tag);
            }
            if route.is_none() {
                route.clone_from(&rule.route);
            }
        }
        Some(route.unwrap_or_else(|| {
            match map.get("service").and_then(Json::as_str) {
                Some("payment-gateway") => "payments",
                Some("user-profile") => "users",
                _ => "general",
            }
            .to_owned()
        }))
    }
}

fn lookup<'v>(map: &'v Map<String, Json>, path: &str) -> Option<&'v Json> {
    let mut parts = path.split('.');
    let mut cur = map.get(parts.next()?)?;
    for p in parts {
        cur = cur.get(p)?;
    }
    Some(cur)
}

fn get_mut<'v>(map: &'v mut Map<String, Json>, path: &str) -> Option<&'v mut Json> {
    let mut parts = path.split('.');
    let mut cur = map.get_mut(parts.next()?)?;
    for p in parts {
        cur = cur.get_mut(p)?;
    }
    Some(cur)
}

/// The event value as a plugin would see it (objects only need to be non-null here).
fn as_wire(v: &Json) -> Value<'_> {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or_default())),
        Json::String(s) => Value::Str(s),
        Json::Array(_) | Json::Object(_) => Value::Json("{}"),
    }
}

fn add_tag(map: &mut Map<String, Json>, tag: &str) {
    if let Json::Array(tags) = map.entry("tags").or_insert_with(|| Json::Array(Vec::new())) {
        if !tags.iter().any(|t| t.as_str() == Some(tag)) {
            tags.push(Json::String(tag.to_owned()));
        }
    }
}

fn coerce(map: &mut Map<String, Json>, field: &str) {
    let (parent, key) = match field.rsplit_once('.') {
        Some((p, k)) => match get_mut(map, p) {
            Some(Json::Object(m)) => (m, k),
            _ => return,
        },
        None => (&mut *map, field),
    };
    let Some(value) = parent.get_mut(key) else {
        return;
    };
    let moved = match value {
        Json::Null | Json::Number(_) => return,
        Json::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                *value = Json::from(i);
                return;
            }
            if let Some(f) = t.parse::<f64>().ok().filter(|f| f.is_finite()) {
                *value = Json::from(f);
                return;
            }
            value.clone()
        }
        other => other.clone(),
    };
    parent.insert(format!("{key}_invalid"), moved);
    parent.shift_remove(key);
    add_tag(map, weir_normalize::TAG_NUMERIC);
}

/// The `[[plugins]]` entries giving the bundled plugins the settings `Native` mirrors;
/// `cpu_deadline: false` compiles them without deadline checks.
pub fn plugins_toml(wasm_dir: &Path, geoip_db: &Path, cpu_deadline: bool) -> String {
    let plugin = |name: &str, file: &str| {
        format!(
            "[[plugins]]\nname = \"{name}\"\npath = {:?}\n[plugins.limits]\ncpu_deadline = {cpu_deadline}\n",
            wasm_dir.join(file)
        )
    };
    let db_dir = geoip_db.parent().unwrap_or(Path::new("."));
    let db_file = geoip_db
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "{}[plugins.config]\npath_patterns = [\"hex\"]\n\
         {}[plugins.grants]\ndirs = {{ \"/geoip\" = {db_dir:?} }}\n[plugins.config]\ndatabase = \"/geoip/{db_file}\"\n\
         {}[plugins.config]\nmask_emails_in = [\"message\"]\n\
         {}",
        plugin("normalize", "weir_normalize.wasm"),
        plugin("geoip", "weir_geoip.wasm"),
        plugin("redact", "weir_redact.wasm"),
        plugin("route", "weir_route.wasm"),
    )
}
