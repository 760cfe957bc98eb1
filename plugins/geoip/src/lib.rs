//! `geoip`: enriches events with the location of a client IP from a MaxMind DB (GeoLite2 /
//! GeoIP2 City or Country, or any compatible database), as Logstash's `geoip` filter does.
//! The host memory-maps the database once for all instances and workers; the plugin can
//! open it only from a read-only grant.
//! See README.md for the configuration reference and the memory trade-off.

use std::net::IpAddr;

use weir_sdk::mmdb::{Database, Location};
use weir_sdk::{plugin, Event, Fields, Outcome, Plugin};

/// Tag for private, loopback, link-local and unspecified addresses (not looked up).
pub const TAG_PRIVATE: &str = "_geoip_private_address";
/// Tag for a value that is not an IP address.
pub const TAG_INVALID: &str = "_geoip_invalid_address";
/// Tag for a lookup the host could not perform (a corrupt record, say).
pub const TAG_LOOKUP_FAILED: &str = "_geoip_lookup_failure";
/// Tag for a public address the database does not know.
pub const TAG_NOT_FOUND: &str = "_geoip_not_found";

/// The `config` table.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The database, as the plugin sees it: a path inside a granted directory.
    pub database: String,
    /// Fields holding the IP; the first present one is used.
    #[serde(default = "default_sources")]
    pub source_fields: Vec<String>,
    /// Field that receives the location object.
    #[serde(default = "default_target")]
    pub target: String,
    /// Language of place names.
    #[serde(default = "default_language")]
    pub language: String,
}

fn default_sources() -> Vec<String> {
    vec!["client_ip".into(), "context.client_ip".into()]
}
fn default_target() -> String {
    "geo".into()
}
fn default_language() -> String {
    "en".into()
}

/// The plugin: a handle on the host's shared copy of the database.
pub struct GeoIp {
    config: Config,
    db: Database,
    /// Output paths under `target`, built once.
    paths: Paths,
}

struct Paths {
    country_iso_code: String,
    country_name: String,
    region: String,
    city_name: String,
    lat: String,
    lon: String,
    asn: String,
    org: String,
}

/// Addresses that have no public location.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

#[plugin]
impl Plugin for GeoIp {
    type Config = Config;

    fn init(config: Config) -> Result<Self, String> {
        let db = Database::open(&config.database).map_err(|e| format!("config.database: {e}"))?;
        let t = &config.target;
        let paths = Paths {
            country_iso_code: format!("{t}.country_iso_code"),
            country_name: format!("{t}.country_name"),
            region: format!("{t}.region"),
            city_name: format!("{t}.city_name"),
            lat: format!("{t}.location.lat"),
            lon: format!("{t}.location.lon"),
            asn: format!("{t}.asn"),
            org: format!("{t}.org"),
        };
        Ok(GeoIp { config, db, paths })
    }

    fn fields(&self) -> Fields {
        Fields::new().read_all(self.config.source_fields.iter().cloned())
    }

    fn process(&mut self, event: &mut Event<'_>) -> Outcome<'_> {
        let Some(text) = self
            .config
            .source_fields
            .iter()
            .find_map(|f| event.get_str(f))
        else {
            return Outcome::Keep;
        };
        let text = text.trim();
        let Ok(ip) = text.parse::<IpAddr>() else {
            event.tag(TAG_INVALID);
            return Outcome::Keep;
        };
        if is_private(ip) {
            event.tag(TAG_PRIVATE);
            return Outcome::Keep;
        }
        // The text just parsed as an address; formatting it again would only cost time.
        match self.db.lookup(text, &self.config.language) {
            Ok(Some(record)) => self.write(event, &record),
            Ok(None) => event.tag(TAG_NOT_FOUND),
            Err(_) => event.tag(TAG_LOOKUP_FAILED),
        }
        Outcome::Keep
    }
}

impl GeoIp {
    fn write(&self, event: &mut Event<'_>, r: &Location) {
        let p = &self.paths;
        let texts = [
            (&p.country_iso_code, &r.country_iso_code),
            (&p.country_name, &r.country_name),
            (&p.region, &r.region),
            (&p.city_name, &r.city_name),
        ];
        for (path, value) in texts {
            if let Some(v) = value {
                event.set(path, v.as_str());
            }
        }
        if let (Some(lat), Some(lon)) = (r.latitude, r.longitude) {
            event.set(&p.lat, lat);
            event.set(&p.lon, lon);
        }
        if let Some(asn) = r.asn {
            event.set(&p.asn, i64::from(asn));
        }
        if let Some(org) = &r.org {
            event.set(&p.org, org.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_sdk::testing::Harness;

    fn db() -> String {
        format!("{}/testdata/test-city.mmdb", env!("CARGO_MANIFEST_DIR"))
    }

    fn harness() -> Harness<GeoIp> {
        Harness::new(json!({ "database": db() })).unwrap()
    }

    #[test]
    fn a_public_address_gets_country_region_city_and_location() {
        let out = harness().run(json!({"client_ip": "81.2.69.160"})).event;
        assert_eq!(
            out["geo"],
            json!({"country_iso_code": "GB", "country_name": "United Kingdom", "region": "England",
                   "city_name": "London", "location": {"lat": 51.5142, "lon": -0.0931}})
        );
    }

    #[test]
    fn asn_and_org_are_added_when_the_database_has_them() {
        let out = harness().run(json!({"client_ip": "89.160.20.130"})).event;
        assert_eq!(out["geo"]["asn"], 29518);
        assert_eq!(out["geo"]["org"], "Bredband2 AB");
        assert_eq!(out["geo"]["city_name"], "Linköping");
    }

    #[test]
    fn nested_source_fields_are_used_when_the_first_is_absent() {
        let out = harness()
            .run(json!({"context": {"client_ip": "175.16.199.10"}}))
            .event;
        assert_eq!(out["geo"]["city_name"], "Changchun");
    }

    #[test]
    fn private_invalid_and_unknown_addresses_are_tagged_not_enriched() {
        let mut h = harness();
        for (ip, tag) in [
            ("10.0.3.7", TAG_PRIVATE),
            ("127.0.0.1", TAG_PRIVATE),
            ("::1", TAG_PRIVATE),
            ("fd00::1", TAG_PRIVATE),
            ("not-an-ip", TAG_INVALID),
            ("1.1.1.1", TAG_NOT_FOUND),
        ] {
            let out = h.run(json!({"client_ip": ip}));
            assert!(out.kept());
            assert!(out.event.get("geo").is_none(), "{ip}");
            assert_eq!(out.event["tags"], json!([tag]), "{ip}");
        }
        assert_eq!(
            h.run(json!({"message": "no ip"})).event,
            json!({"message": "no ip"})
        );
    }

    #[test]
    fn target_and_sources_are_configurable() {
        let mut h = Harness::<GeoIp>::new(
            json!({"database": db(), "source_fields": ["remote"], "target": "client.geo"}),
        )
        .unwrap();
        let out = h.run(json!({"remote": "8.8.8.8"})).event;
        assert_eq!(out["client"]["geo"]["country_iso_code"], "US");
        assert_eq!(out["client"]["geo"]["org"], "Google LLC");
    }

    #[test]
    fn a_missing_or_corrupt_database_is_an_init_error() {
        let err = Harness::<GeoIp>::new(json!({"database": "/nope/x.mmdb"}))
            .err()
            .unwrap();
        assert!(
            err.starts_with("config.database: cannot open /nope/x.mmdb"),
            "{err}"
        );
        let corrupt =
            std::env::temp_dir().join(format!("weir-corrupt-{}.mmdb", std::process::id()));
        std::fs::write(&corrupt, b"definitely not an mmdb").unwrap();
        let err = Harness::<GeoIp>::new(json!({"database": corrupt}))
            .err()
            .unwrap();
        let _ = std::fs::remove_file(&corrupt);
        assert!(err.contains("is not a valid MaxMind DB"), "{err}");
        let err = Harness::<GeoIp>::new(json!({})).err().unwrap();
        assert!(err.contains("missing field `database`"), "{err}");
    }
}
