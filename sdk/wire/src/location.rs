//! The location record behind the `weir:filter/mmdb` import: which fields of a MaxMind DB
//! record (GeoIP2/GeoLite2 City or Country, ASN, or a combined database) a lookup returns.

/// What a lookup found. Every field is optional: a Country database has no city, an ASN
/// database has only `asn` and `org`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Location {
    /// ISO 3166-1 alpha-2 country code.
    pub country_iso_code: Option<String>,
    /// Country name in the requested language (English when missing).
    pub country_name: Option<String>,
    /// First subdivision's name (state, region).
    pub region: Option<String>,
    /// City name.
    pub city_name: Option<String>,
    /// Latitude.
    pub latitude: Option<f64>,
    /// Longitude.
    pub longitude: Option<f64>,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// Autonomous system organisation.
    pub org: Option<String>,
}
