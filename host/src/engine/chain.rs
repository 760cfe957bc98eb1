//! The ordered chain of plugin instances one worker runs batches through.

use std::sync::Arc;
use std::time::Instant;

use weir_wire::json::{settle, Fate};
use weir_wire::{Decisions, Edit, Outcome};

use super::{LoadedPlugin, PluginFailure, PluginInstance, PluginStats, Policy};
use crate::event::{DeadLetter, Event, Stage};

/// One worker's chain: an instance of every plugin, in order.
pub struct Chain {
    stages: Vec<StageRunner>,
}

struct StageRunner {
    plugin: Arc<LoadedPlugin>,
    instance: Option<PluginInstance>,
}

/// What one plugin did to one event, for `weir test`.
#[derive(Debug, Clone)]
pub struct TraceEntry {
    /// The event's position in its input.
    pub position: u64,
    /// The plugin.
    pub plugin: Arc<str>,
    /// `keep`, `drop`, `route <target>`, `fail: <reason>` or a batch failure.
    pub decision: String,
    /// The edits it made, as text.
    pub edits: Vec<String>,
}

impl Chain {
    /// Starts an instance of every plugin; fails on the first that will not start.
    pub fn start(
        plugins: &[Arc<LoadedPlugin>],
    ) -> Result<Self, (Arc<LoadedPlugin>, PluginFailure)> {
        let mut stages = Vec::with_capacity(plugins.len());
        for p in plugins {
            let instance = PluginInstance::start(p).map_err(|f| (p.clone(), f))?;
            stages.push(StageRunner {
                plugin: p.clone(),
                instance: Some(instance),
            });
        }
        Ok(Chain { stages })
    }

    /// The plugins, in order.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.stages.iter().map(|s| &s.plugin)
    }

    /// Runs a batch through every plugin in order. Events that end up dropped leave
    /// `events`; events that fail move to `dead`. With `trace`, records every decision.
    pub fn run(
        &mut self,
        events: &mut Vec<Event>,
        dead: &mut Vec<DeadLetter>,
        mut trace: Option<&mut Vec<TraceEntry>>,
    ) {
        for stage in &mut self.stages {
            if events.is_empty() {
                break;
            }
            stage.run(events, dead, trace.as_deref_mut());
        }
    }
}

impl StageRunner {
    fn run(
        &mut self,
        events: &mut Vec<Event>,
        dead: &mut Vec<DeadLetter>,
        mut trace: Option<&mut Vec<TraceEntry>>,
    ) {
        let started = Instant::now();
        let stats = self.plugin.stats.clone();
        PluginStats::add(&stats.events_in, events.len() as u64);
        let events_in = events.len() as u64;
        let reply = self.call(events);
        let applied = reply.and_then(|reply| {
            // The whole reply is decoded and checked before any of it is applied, so a
            // malformed reply never leaves the batch half-edited.
            let decisions = Decisions::decode(&reply, events.len()).map_err(|e| {
                // A bad reply means a broken guest: start a fresh instance next time.
                self.instance = None;
                PluginFailure::BadReply(e.to_string())
            })?;
            Ok(apply_reply(
                &self.plugin,
                &decisions,
                events,
                dead,
                trace.as_deref_mut(),
            ))
        });
        let [kept, routed, dropped, failed] = match applied {
            Ok(counts) => counts,
            Err(failure) => {
                PluginStats::add(&stats.batch_failures, 1);
                crate::metrics::plugin_batch_failed(&self.plugin.name);
                self.fail_batch(failure, events, dead, trace)
            }
        };
        PluginStats::add(&stats.kept, kept);
        PluginStats::add(&stats.routed, routed);
        PluginStats::add(&stats.dropped, dropped);
        PluginStats::add(&stats.failed, failed);
        let elapsed = started.elapsed();
        PluginStats::add(&stats.nanos, elapsed.as_nanos() as u64);
        crate::metrics::plugin_batch(
            &self.plugin.name,
            [events_in, kept, routed, dropped, failed],
            elapsed,
        );
    }

    /// Calls the plugin, restarting its instance first if the last call killed it.
    fn call(&mut self, events: &[Event]) -> Result<Vec<u8>, PluginFailure> {
        if self.instance.is_none() {
            PluginStats::add(&self.plugin.stats.restarts, 1);
            self.instance = Some(PluginInstance::start(&self.plugin)?);
        }
        let Some(instance) = self.instance.as_mut() else {
            return Err(PluginFailure::Start("no instance".into()));
        };
        let result = instance.process(events);
        if matches!(&result, Err(f) if !matches!(f, PluginFailure::Error(_))) {
            // A trapped store cannot be trusted again.
            self.instance = None;
        }
        result
    }

    /// Applies the failure policy; returns `[kept, routed, dropped, failed]`.
    fn fail_batch(
        &self,
        failure: PluginFailure,
        events: &mut Vec<Event>,
        dead: &mut Vec<DeadLetter>,
        trace: Option<&mut Vec<TraceEntry>>,
    ) -> [u64; 4] {
        let name = &self.plugin.name;
        let policy = self.plugin.spec.config.on_error;
        tracing::warn!(
            plugin = &**name,
            events = events.len(),
            policy = policy.as_str(),
            "plugin {failure}"
        );
        if let Some(trace) = trace {
            for e in events.iter() {
                trace.push(TraceEntry {
                    position: e.origin.position,
                    plugin: name.clone(),
                    decision: format!("batch failed ({}): plugin {failure}", policy.as_str()),
                    edits: Vec::new(),
                });
            }
        }
        if policy == Policy::FailOpen {
            return [events.len() as u64, 0, 0, 0];
        }
        let failed = events.len() as u64;
        let reason = format!("plugin `{name}` {failure}");
        dead.extend(events.drain(..).map(|e| DeadLetter {
            raw: e.doc.into_text(),
            reason: reason.clone(),
            stage: Stage::Plugin(name.clone()),
            origin: e.origin,
        }));
        [0, 0, 0, failed]
    }
}

/// Applies a decoded reply to the batch; returns `[kept, routed, dropped, failed]`.
fn apply_reply(
    plugin: &LoadedPlugin,
    decisions: &Decisions<'_>,
    events: &mut Vec<Event>,
    dead: &mut Vec<DeadLetter>,
    mut trace: Option<&mut Vec<TraceEntry>>,
) -> [u64; 4] {
    let mut decisions = decisions.iter();
    let (mut kept, mut routed, mut dropped, mut failed) = (0u64, 0u64, 0u64, 0u64);
    events.retain_mut(|event| {
        // `Decisions::decode` has checked there is one decision per event.
        let (outcome, edits) = decisions.next().unwrap_or((Outcome::Keep, &[]));
        if let Some(trace) = trace.as_deref_mut() {
            trace.push(TraceEntry {
                position: event.origin.position,
                plugin: plugin.name.clone(),
                decision: describe(outcome),
                edits: edits.iter().map(describe_edit).collect(),
            });
        }
        match settle(&mut event.doc, edits, outcome) {
            Fate::Keep => {
                kept += 1;
                true
            }
            Fate::Route(target) => {
                routed += 1;
                event.route = Some(target);
                true
            }
            Fate::Drop => {
                dropped += 1;
                false
            }
            Fate::Fail(reason) => {
                failed += 1;
                dead.push(DeadLetter {
                    raw: std::mem::take(&mut event.doc).into_text(),
                    reason: format!("plugin `{}`: {reason}", plugin.name),
                    stage: Stage::Plugin(plugin.name.clone()),
                    origin: event.origin.clone(),
                });
                false
            }
        }
    });
    [kept, routed, dropped, failed]
}

fn describe(outcome: Outcome<'_>) -> String {
    match outcome {
        Outcome::Keep => "keep".into(),
        Outcome::Drop => "drop".into(),
        Outcome::Route(t) => format!("route {t}"),
        Outcome::Fail(r) => format!("fail: {r}"),
    }
}

fn describe_edit(edit: &Edit<'_>) -> String {
    match edit {
        Edit::Set(path, value) => match weir_wire::json::to_json(path, *value) {
            Ok(v) => format!("set {path} = {v}"),
            Err(e) => format!("set {path}: {e}"),
        },
        Edit::Remove(path) => format!("remove {path}"),
        Edit::Tag(tag) => format!("tag {tag}"),
    }
}
