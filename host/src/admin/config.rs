//! The `[admin]` table and its checks.

use std::net::{SocketAddr, ToSocketAddrs};

use serde::Deserialize;

/// The `[admin]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on, e.g. `"127.0.0.1:9600"`.
    pub listen: String,
    /// Bearer token the endpoints listed in `token_for` must present; required when
    /// `listen` is not loopback. Write `"${WEIR_ADMIN_TOKEN}"` to keep it out of the file.
    #[serde(default)]
    pub token: Option<String>,
    /// Which endpoints need `token` when one is set: any of `"reload"` (`POST /reload`),
    /// `"status"` (`GET /status`) and `"metrics"` (`GET /metrics`). `"reload"` must be
    /// among them. `GET /health` and `GET /ready` are always open, so that load balancers
    /// and orchestrators can probe without a token; they cannot be listed.
    ///
    /// Default: `["reload"]`.
    #[serde(default = "default_token_for")]
    pub token_for: Vec<String>,
}

/// An endpoint that can be made to need the token (`admin.token_for`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarded {
    /// `POST /reload`.
    Reload,
    /// `GET /status`.
    Status,
    /// `GET /metrics`.
    Metrics,
}

impl Guarded {
    /// The endpoint's name in `token_for`.
    pub fn name(self) -> &'static str {
        match self {
            Guarded::Reload => "reload",
            Guarded::Status => "status",
            Guarded::Metrics => "metrics",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Guarded::Reload, Guarded::Status, Guarded::Metrics]
            .into_iter()
            .find(|g| g.name() == name)
    }
}

fn default_token_for() -> Vec<String> {
    vec![Guarded::Reload.name().to_owned()]
}

impl AdminConfig {
    /// Checks the address parses, a non-loopback listener has a token and `token_for`
    /// names known endpoints; the message starts with the key (without `admin.`).
    pub fn validate(&self) -> Result<(), String> {
        let addr = self.addr()?;
        if !addr.ip().is_loopback() && self.token().is_none() {
            return Err(format!(
                "token: required because listen ({addr}) is not a loopback address: anyone who can reach it could reload the chain"
            ));
        }
        let guarded = self.guarded()?;
        if !guarded.contains(&Guarded::Reload) {
            return Err(
                "token_for: must include \"reload\": a set token always guards POST /reload".into(),
            );
        }
        if let (Some(g), None) = (
            guarded.iter().find(|g| **g != Guarded::Reload),
            self.token(),
        ) {
            return Err(format!(
                "token_for: lists {:?} but no token is set, so it would stay open",
                g.name()
            ));
        }
        Ok(())
    }

    /// The token, if one is set and not empty.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref().filter(|t| !t.is_empty())
    }

    /// The endpoints `token_for` names.
    pub fn guarded(&self) -> Result<Vec<Guarded>, String> {
        self.token_for
            .iter()
            .map(|name| match name.as_str() {
                "health" | "ready" => Err(format!(
                    "token_for: {name:?} is always open (load balancers probe it without a token)"
                )),
                _ => Guarded::from_name(name).ok_or_else(|| {
                    format!("token_for: unknown endpoint {name:?} (expected \"reload\", \"status\" or \"metrics\")")
                }),
            })
            .collect()
    }

    /// The first address `listen` resolves to.
    pub fn addr(&self) -> Result<SocketAddr, String> {
        self.listen
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("listen: {:?} is not a host:port address", self.listen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(listen: &str, token: Option<&str>, token_for: &[&str]) -> AdminConfig {
        AdminConfig {
            listen: listen.into(),
            token: token.map(Into::into),
            token_for: token_for.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_public_listener_needs_a_token() {
        let err = admin("0.0.0.0:9600", None, &["reload"]).validate();
        assert!(err.unwrap_err().starts_with("token: required"));
        assert!(admin("0.0.0.0:9600", Some("s"), &["reload"])
            .validate()
            .is_ok());
        assert!(admin("127.0.0.1:9600", None, &["reload"])
            .validate()
            .is_ok());
        let err = admin("nowhere", None, &["reload"]).validate();
        assert!(err.unwrap_err().starts_with("listen:"));
    }

    #[test]
    fn token_for_defaults_to_reload_and_names_what_it_refuses() {
        let parsed: AdminConfig = toml::from_str("listen = \"127.0.0.1:1\"").unwrap();
        assert_eq!(parsed.token_for, ["reload"]);
        let all = admin("127.0.0.1:1", Some("s"), &["reload", "status", "metrics"]);
        assert!(all.validate().is_ok());
        assert_eq!(
            all.guarded().unwrap(),
            [Guarded::Reload, Guarded::Status, Guarded::Metrics]
        );
        let check = |token_for: &[&str], token: Option<&str>| {
            admin("127.0.0.1:1", token, token_for)
                .validate()
                .unwrap_err()
        };
        assert!(check(&["reload", "x"], Some("s")).starts_with("token_for: unknown endpoint \"x\""));
        assert!(check(&["reload", "health"], Some("s")).contains("\"health\" is always open"));
        assert!(check(&["status"], Some("s")).contains("must include \"reload\""));
        assert!(check(&["reload", "status"], None).contains("no token is set"));
        assert!(check(&["reload", "status"], Some("")).contains("no token is set"));
    }
}
