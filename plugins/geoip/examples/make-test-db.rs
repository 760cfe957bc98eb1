//! Writes `testdata/test-city.mmdb`: a tiny GeoLite2-City-shaped database (with ASN fields
//! on one network) for the plugin's tests. Addresses are from the ranges MaxMind's own test
//! databases use; the places are illustrative. Run from plugins/geoip:
//!     cargo run --example make-test-db
//! `cargo run --release --example make-test-db -- large OUT.mmdb N` instead writes N
//! distinct /24 city networks, for measuring memory with a GeoLite2-City-sized database.

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

/// Network, country code, country, (region code, region), city, (lat, lon), (asn, org).
type Row = (
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    Option<&'static str>,
    (f64, f64),
    Option<(u32, &'static str)>,
);

fn en(name: &'static str) -> BTreeMap<&'static str, &'static str> {
    [("en", name)].into()
}

fn large(out: &str, n: u32) -> Result<(), Box<dyn std::error::Error>> {
    let mut w = mmdb_writer::Writer::new("GeoLite2-City");
    for i in 0..n {
        let base = 0x0100_0000u32 + (i << 8);
        let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(base), 24)?;
        let city: &'static str = Box::leak(
            format!("Synthetic City {i:07} of the measurement database").into_boxed_str(),
        );
        let record = Record {
            country: Country {
                iso_code: "ZZ",
                names: en("Synthetic Country"),
            },
            subdivisions: vec![Subdivision {
                iso_code: "ZZ",
                names: en("Synthetic Region"),
            }],
            city: Some(Names { names: en(city) }),
            location: Location {
                latitude: f64::from(i % 180) - 90.0 + 0.5,
                longitude: f64::from(i % 360) - 180.0 + 0.25,
            },
            autonomous_system_number: Some(64_512 + i % 1000),
            autonomous_system_organization: None,
        };
        w.insert(ipnet::IpNet::V4(net), &record)?;
    }
    std::fs::write(out, w.to_bytes()?)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("large") {
        let out = args.get(2).ok_or("usage: large OUT N")?;
        let n = args.get(3).ok_or("usage: large OUT N")?.parse()?;
        return large(out, n);
    }
    let mut w = mmdb_writer::Writer::new("GeoLite2-City");
    let rows: [Row; 5] = [
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
