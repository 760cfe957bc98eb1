//! The `[admin]` table and its checks.

use std::net::{SocketAddr, ToSocketAddrs};

use serde::Deserialize;

/// The `[admin]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on, e.g. `"127.0.0.1:9600"`.
    pub listen: String,
    /// Bearer token `POST /reload` must present; required when `listen` is not loopback.
    /// Write `"${WEIR_ADMIN_TOKEN}"` to keep it out of the file.
    #[serde(default)]
    pub token: Option<String>,
}

impl AdminConfig {
    /// Checks the address parses and a non-loopback listener has a token; the message
    /// starts with the key (without `admin.`).
    pub fn validate(&self) -> Result<(), String> {
        let addr = self.addr()?;
        if !addr.ip().is_loopback() && self.token().is_none() {
            return Err(format!(
                "token: required because listen ({addr}) is not a loopback address: anyone who can reach it could reload the chain"
            ));
        }
        Ok(())
    }

    /// The token, if one is set and not empty.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref().filter(|t| !t.is_empty())
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

    fn admin(listen: &str, token: Option<&str>) -> AdminConfig {
        AdminConfig {
            listen: listen.into(),
            token: token.map(Into::into),
        }
    }

    #[test]
    fn a_public_listener_needs_a_token() {
        let err = admin("0.0.0.0:9600", None).validate();
        assert!(err.unwrap_err().starts_with("token: required"));
        assert!(admin("0.0.0.0:9600", Some("s")).validate().is_ok());
        assert!(admin("127.0.0.1:9600", None).validate().is_ok());
        let err = admin("nowhere", None).validate();
        assert!(err.unwrap_err().starts_with("listen:"));
    }
}
