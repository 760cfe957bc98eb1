//! Writes `testdata/test-city.mmdb`: a tiny GeoLite2-City-shaped database (with ASN fields
//! on one network) for the plugin's tests. Addresses are from the ranges MaxMind's own test
//! databases use; the places are illustrative. Run from plugins/geoip:
//!     cargo run --example make-test-db

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Serialize)]
struct Names {
    names: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct Country {
    iso_code: &'static str,
    names: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct Subdivision {
    iso_code: &'static str,
    names: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize)]
struct Record {
    country: Country,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subdivisions: Vec<Subdivision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<Names>,
    location: Location,
    #[serde(skip_serializing_if = "Option::is_none")]
    autonomous_system_number: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    autonomous_system_organization: Option<&'static str>,
}

fn en(name: &'static str) -> BTreeMap<&'static str, &'static str> {
    [("en", name)].into()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut w = mmdb_writer::Writer::new("GeoLite2-City");
    let rows: [(
        &str,
        &str,
        &str,
        Option<(&str, &str)>,
        Option<&str>,
        (f64, f64),
        Option<(u32, &str)>,
    ); 5] = [
        (
            "81.2.69.160/27",
            "GB",
            "United Kingdom",
            Some(("ENG", "England")),
            Some("London"),
            (51.5142, -0.0931),
            None,
        ),
        (
            "2.125.160.216/29",
            "GB",
            "United Kingdom",
            Some(("ENG", "England")),
            Some("Boxford"),
            (51.75, -1.25),
            None,
        ),
        (
            "89.160.20.128/25",
            "SE",
            "Sweden",
            Some(("E", "Östergötland County")),
            Some("Linköping"),
            (58.4167, 15.6167),
            Some((29518, "Bredband2 AB")),
        ),
        (
            "175.16.199.0/24",
            "CN",
            "China",
            Some(("22", "Jilin Sheng")),
            Some("Changchun"),
            (43.88, 125.3228),
            None,
        ),
        (
            "8.8.8.0/24",
            "US",
            "United States",
            None,
            None,
            (37.751, -97.822),
            Some((15169, "Google LLC")),
        ),
    ];
    for (net, iso, country, sub, city, (lat, lon), asn) in rows {
        let record = Record {
            country: Country {
                iso_code: iso,
                names: en(country),
            },
            subdivisions: sub
                .map(|(code, name)| Subdivision {
                    iso_code: code,
                    names: en(name),
                })
                .into_iter()
                .collect(),
            city: city.map(|c| Names { names: en(c) }),
            location: Location {
                latitude: lat,
                longitude: lon,
            },
            autonomous_system_number: asn.map(|a| a.0),
            autonomous_system_organization: asn.map(|a| a.1),
        };
        w.insert(net.parse::<ipnet::IpNet>()?, &record)?;
    }
    std::fs::write("testdata/test-city.mmdb", w.to_bytes()?)?;
    Ok(())
}
