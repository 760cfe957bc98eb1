//! What happens to a batch when a plugin fails as a whole.

use serde::Deserialize;

/// A plugin's failure policy, for traps, deadline and memory-cap overruns, malformed replies
/// and errors returned by `process`. (An event the plugin itself fails always goes to the
/// dead-letter output.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The batch's events continue down the chain unchanged by this plugin.
    FailOpen,
    /// The batch's events go to the dead-letter output with the plugin's name and the error.
    #[default]
    FailClosed,
}

impl Policy {
    /// The name used in config and status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::FailOpen => "fail-open",
            Policy::FailClosed => "fail-closed",
        }
    }
}
