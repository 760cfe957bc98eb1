//! MaxMind DB lookups producing [`Location`]s: the host's `mmdb` import, and the SDK's
//! native stand-in for it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use crate::Location;

/// A database read into memory (the SDK's native harness uses this).
pub type FileReader = maxminddb::Reader<Vec<u8>>;
/// A memory-mapped database (the host uses this, shared between instances).
pub type MappedReader = maxminddb::Reader<maxminddb::Mmap>;

#[derive(Debug, Default, serde::Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Place<'a>>,
    #[serde(borrow, default)]
    subdivisions: Vec<Place<'a>>,
    #[serde(borrow, default)]
    city: Option<Place<'a>>,
    #[serde(default)]
    location: Option<Coordinates>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct Place<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: BTreeMap<&'a str, &'a str>,
}

#[derive(Debug, serde::Deserialize)]
struct Coordinates {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

fn name(place: &Place<'_>, language: &str) -> Option<String> {
    place
        .names
        .get(language)
        .or_else(|| place.names.get("en"))
        .map(|s| (*s).to_owned())
}

/// Looks `ip` up; `Ok(None)` when the database has no record for it.
pub fn locate<S: AsRef<[u8]>>(
    reader: &maxminddb::Reader<S>,
    ip: IpAddr,
    language: &str,
) -> Result<Option<Location>, String> {
    let result = reader.lookup(ip).map_err(|e| e.to_string())?;
    let Some(r) = result.decode::<Record<'_>>().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let coords = r.location.as_ref();
    Ok(Some(Location {
        country_iso_code: r
            .country
            .as_ref()
            .and_then(|c| c.iso_code)
            .map(str::to_owned),
        country_name: r.country.as_ref().and_then(|c| name(c, language)),
        region: r.subdivisions.first().and_then(|s| name(s, language)),
        city_name: r.city.as_ref().and_then(|c| name(c, language)),
        latitude: coords.and_then(|c| c.latitude),
        longitude: coords.and_then(|c| c.longitude),
        asn: r.autonomous_system_number,
        org: r.autonomous_system_organization.map(str::to_owned),
    }))
}

/// Opens a database by memory-mapping it, so every instance and worker shares one copy.
///
/// # Safety
/// The file must not be modified in place while mapped; replace it by writing a new file
/// and renaming it over the old one (as MaxMind's `geoipupdate` does).
pub unsafe fn open_mapped(path: &Path) -> Result<MappedReader, String> {
    // SAFETY: forwarded to the caller, see above.
    unsafe { maxminddb::Reader::open_mmap(path) }.map_err(|e| e.to_string())
}

/// Reads a database into memory.
pub fn open_file(path: &Path) -> Result<FileReader, String> {
    maxminddb::Reader::open_readfile(path).map_err(|e| e.to_string())
}
