//! The trait a plugin implements, and the small types it speaks in.

use std::borrow::Cow;

use serde::de::DeserializeOwned;

use crate::Event;

/// A Weir filter plugin.
///
/// One value of the type lives per plugin instance: the host calls [`init`](Plugin::init)
/// once with the operator's configuration, then [`process`](Plugin::process) for every
/// event, in order, batch after batch. Panics are contained by the host (the batch then
/// follows the plugin's failure policy), but [`Outcome::Fail`] is the polite way to give
/// up on one event.
pub trait Plugin: Sized + 'static {
    /// The plugin's configuration: the `config` table under the plugin in the pipeline file.
    /// Use `#[serde(deny_unknown_fields)]` so a misspelt key is reported to the operator.
    type Config: DeserializeOwned;

    /// Builds the plugin from its configuration. An `Err` is shown to the operator by
    /// `weir check` and stops the pipeline from loading.
    fn init(config: Self::Config) -> Result<Self, String>;

    /// The fields this plugin reads. Only these are sent to it, so declare every one:
    /// in native tests, reading an undeclared field panics to tell you.
    fn fields(&self) -> Fields;

    /// Decides one event's fate, editing it on the way.
    fn process(&mut self, event: &mut Event<'_>) -> Outcome<'_>;
}

/// What a plugin reads, declared once at init.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub(crate) reads: Vec<String>,
    pub(crate) find_keys: Vec<String>,
}

impl Fields {
    /// Declares nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a dotted path the plugin reads, e.g. `"context.client_ip"`.
    pub fn read(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        if !self.reads.contains(&path) {
            self.reads.push(path);
        }
        self
    }

    /// Declares several paths.
    pub fn read_all<S: Into<String>>(self, paths: impl IntoIterator<Item = S>) -> Self {
        paths.into_iter().fold(self, |f, p| f.read(p))
    }

    /// Asks the host to find every key with this name (case-insensitive) at any depth;
    /// see [`Event::found`].
    pub fn find_key(mut self, key: impl Into<String>) -> Self {
        self.find_keys.push(key.into());
        self
    }
}

/// What happens to an event after this plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Continue down the chain, with this plugin's edits.
    Keep,
    /// Discard the event on purpose (it counts as handled, not lost).
    Drop,
    /// Continue, with this route target (the sink turns it into e.g. an index name).
    /// A later plugin's route replaces this one.
    Route(Cow<'a, str>),
    /// Send the event to the dead-letter output with this reason.
    Fail(Cow<'a, str>),
}

impl<'a> Outcome<'a> {
    /// [`Outcome::Route`] from a borrowed or owned target.
    pub fn route(target: impl Into<Cow<'a, str>>) -> Self {
        Outcome::Route(target.into())
    }

    /// [`Outcome::Fail`] from a borrowed or owned reason.
    pub fn fail(reason: impl Into<Cow<'a, str>>) -> Self {
        Outcome::Fail(reason.into())
    }

    pub(crate) fn to_wire(&self) -> weir_wire::Outcome<'_> {
        match self {
            Outcome::Keep => weir_wire::Outcome::Keep,
            Outcome::Drop => weir_wire::Outcome::Drop,
            Outcome::Route(t) => weir_wire::Outcome::Route(t),
            Outcome::Fail(r) => weir_wire::Outcome::Fail(r),
        }
    }
}

/// The configuration of a plugin that takes none: any key is an error.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}
