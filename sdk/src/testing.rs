//! A native test harness: run a plugin on `serde_json` events under plain `cargo test`,
//! with no wasm involved. Events are projected, and replies applied, by the same
//! `weir-wire` code the host runs, so what passes here behaves the same in the host.
//!
//! ```
//! # use weir_sdk::{plugin, Event, Fields, NoConfig, Outcome, Plugin};
//! # struct Upper;
//! # #[plugin]
//! # impl Plugin for Upper {
//! #     type Config = NoConfig;
//! #     fn init(_: NoConfig) -> Result<Self, String> { Ok(Upper) }
//! #     fn fields(&self) -> Fields { Fields::new().read("level") }
//! #     fn process(&mut self, e: &mut Event<'_>) -> Outcome<'_> {
//! #         if let Some(l) = e.get_str("level") { let u = l.to_uppercase(); e.set("level", u.as_str()); }
//! #         Outcome::Keep
//! #     }
//! # }
//! use serde_json::json;
//! use weir_sdk::testing::Harness;
//!
//! let mut h = Harness::<Upper>::new(json!({})).unwrap();
//! let out = h.run(json!({"level": "warn"}));
//! assert!(out.kept());
//! assert_eq!(out.event["level"], "WARN");
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::Value as Json;
use weir_wire::doc::Doc;
use weir_wire::json::{settle, ReadPlan};
use weir_wire::{BatchWriter, Decisions, ReplyLimits};

pub use weir_wire::json::Fate;

use crate::runtime::Instance;
use crate::{Level, Plugin};

/// Runs one plugin instance natively.
pub struct Harness<P: Plugin> {
    instance: Instance<P>,
    plan: ReadPlan,
}

/// One event after the plugin: its fate and its (edited) body.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// What the plugin decided.
    pub fate: Fate,
    /// The event with the plugin's edits applied (unchanged when dropped or failed).
    pub event: Json,
}

impl Processed {
    /// The event continues (kept or routed).
    pub fn kept(&self) -> bool {
        matches!(self.fate, Fate::Keep | Fate::Route(_))
    }

    /// The event was dropped.
    pub fn dropped(&self) -> bool {
        self.fate == Fate::Drop
    }

    /// The route target, when the plugin routed the event.
    pub fn route(&self) -> Option<&str> {
        match &self.fate {
            Fate::Route(t) => Some(t),
            _ => None,
        }
    }

    /// The failure reason, when the plugin failed the event.
    pub fn failure(&self) -> Option<&str> {
        match &self.fate {
            Fate::Fail(r) => Some(r),
            _ => None,
        }
    }
}

impl<P: Plugin> Harness<P> {
    /// Initialises the plugin with `config` (what the pipeline file's `config` table
    /// becomes); the error is the message the operator would see.
    pub fn new(config: Json) -> Result<Self, String> {
        let instance = Instance::<P>::new(&config.to_string())?;
        let plan =
            ReadPlan::new(instance.reads(), instance.find_keys()).map_err(|e| e.to_string())?;
        Ok(Harness { instance, plan })
    }

    /// Runs one event.
    pub fn run(&mut self, event: Json) -> Processed {
        self.run_batch(vec![event])
            .pop()
            .unwrap_or_else(|| Processed {
                fate: Fate::Fail("the harness lost the event".into()),
                event: Json::Null,
            })
    }

    /// Runs events as one batch, the way the host does.
    ///
    /// # Panics
    /// When an event is not a JSON object (the host dead-letters those before any plugin
    /// sees them), or when the plugin's reply is malformed, which the SDK never produces.
    pub fn run_batch(&mut self, events: Vec<Json>) -> Vec<Processed> {
        let mut events: Vec<Doc> = events
            .into_iter()
            .map(|e| match Doc::parse(e.to_string()) {
                Ok(doc) => doc,
                Err(e) => panic!("plugins only ever see JSON objects; this is not one: {e}"),
            })
            .collect();
        let mut batch = BatchWriter::new(self.plan.slot_count());
        for e in &events {
            self.plan.write_event(&mut batch, e);
        }
        let reply = match self.instance.process(batch.as_bytes()) {
            Ok(reply) => reply,
            Err(e) => panic!("the plugin failed the batch: {e}"),
        };
        let decisions = match Decisions::decode(&reply, events.len(), &ReplyLimits::default()) {
            Ok(decisions) => decisions,
            Err(e) => panic!("malformed reply: {e}"),
        };
        events
            .iter_mut()
            .zip(decisions.iter())
            .map(|(event, (outcome, edits))| Processed {
                fate: settle(event, edits, outcome),
                event: event.to_value(),
            })
            .collect()
    }
}

thread_local! {
    static LOGS: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
    static COUNTS: RefCell<BTreeMap<String, u64>> = const { RefCell::new(BTreeMap::new()) };
}

pub(crate) fn record_log(level: Level, message: &str) {
    LOGS.with(|l| l.borrow_mut().push((level, message.to_owned())));
}

pub(crate) fn record_count(name: &str, delta: u64) {
    COUNTS.with(|c| *c.borrow_mut().entry(name.to_owned()).or_default() += delta);
}

/// The log lines the plugin wrote on this thread since the last call.
pub fn take_logs() -> Vec<(Level, String)> {
    LOGS.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// The counters the plugin added to on this thread since the last call.
pub fn take_counts() -> BTreeMap<String, u64> {
    COUNTS.with(|c| std::mem::take(&mut *c.borrow_mut()))
}
