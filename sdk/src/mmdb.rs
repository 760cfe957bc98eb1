//! MaxMind DB lookups (GeoIP2 / GeoLite2 City, Country, ASN) served by the host.
//!
//! Inside Weir the host memory-maps each database once and shares it between every
//! instance and worker, so a 60 MB database costs 60 MB however many workers run, rather
//! than one copy per instance. The path must lie inside one of the plugin's granted
//! directories. In native tests the file is read directly.
//!
//! ```no_run
//! let db = weir_sdk::mmdb::Database::open("/geoip/GeoLite2-City.mmdb")?;
//! if let Some(place) = db.lookup("81.2.69.160", "en")? {
//!     assert_eq!(place.country_iso_code.as_deref(), Some("GB"));
//! }
//! # Ok::<(), String>(())
//! ```

pub use weir_wire::Location;

/// An open database.
pub struct Database {
    #[cfg(target_arch = "wasm32")]
    handle: u32,
    #[cfg(not(target_arch = "wasm32"))]
    reader: weir_wire::mmdb::FileReader,
}

impl Database {
    /// Opens the database at `path` (inside a granted directory when running in Weir).
    /// The error explains what is wrong, for the operator.
    pub fn open(path: &str) -> Result<Database, String> {
        #[cfg(target_arch = "wasm32")]
        {
            crate::__private::bindings::weir::filter::mmdb::open(path)
                .map(|handle| Database { handle })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            // The same two failures, worded as the host words them.
            std::fs::metadata(path).map_err(|e| format!("cannot open {path}: {e}"))?;
            weir_wire::mmdb::open_file(std::path::Path::new(path))
                .map(|reader| Database { reader })
                .map_err(|e| format!("{path} is not a valid MaxMind DB: {e}"))
        }
    }

    /// Looks `ip` up; `Ok(None)` when the database has no record for it. Names are in
    /// `language`, falling back to English.
    pub fn lookup(&self, ip: &str, language: &str) -> Result<Option<Location>, String> {
        #[cfg(target_arch = "wasm32")]
        {
            let found =
                crate::__private::bindings::weir::filter::mmdb::lookup(self.handle, ip, language)?;
            Ok(found.map(|l| Location {
                country_iso_code: l.country_iso_code,
                country_name: l.country_name,
                region: l.region,
                city_name: l.city_name,
                latitude: l.latitude,
                longitude: l.longitude,
                asn: l.asn,
                org: l.org,
            }))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let ip = ip
                .trim()
                .parse()
                .map_err(|_| format!("{ip:?} is not an IP address"))?;
            weir_wire::mmdb::locate(&self.reader, ip, language)
        }
    }
}
