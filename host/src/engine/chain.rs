//! The ordered chain of plugin instances one worker runs batches through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_wire::json::{settle, Fate};
use weir_wire::{Decisions, Edit, Outcome};

use super::{LoadedPlugin, PluginFailure, PluginInstance, PluginStats, Policy, EPOCH_TICK};
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

/// What a stage did with a batch's events: kept, routed, dropped, failed.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    kept: u64,
    routed: u64,
    dropped: u64,
    failed: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.kept += o.kept;
        self.routed += o.routed;
        self.dropped += o.dropped;
        self.failed += o.failed;
    }
}

/// A part of a failed batch still to settle while isolating the events that fail it.
struct Segment {
    events: Vec<Event>,
    /// Whether this very segment was called and failed (else only a larger one did).
    tried: bool,
    /// The failure it caused, or the one of the batch it came from.
    failure: PluginFailure,
}

/// Retries a failing batch of `n` events may cost before the rest of it follows the
/// policy as it stands: enough to single out two poison events by halving.
fn isolation_budget(n: usize) -> usize {
    4 * (usize::BITS - n.saturating_sub(1).leading_zeros()) as usize
}

/// Time isolating one batch may take: as if every retry ran to the plugin's deadline
/// as the epoch counts it (up to two ticks late), plus a second for the instance
/// restarts between retries, which a loaded machine slows (without that slack, batch
/// mates of a looping event were dead-lettered on a busy host). A retry after a trap
/// restarts the instance, and a slow `init` would otherwise multiply into minutes per
/// batch.
fn isolation_time(plugin: &LoadedPlugin, retries: usize) -> Duration {
    let per_retry = Duration::from_millis(plugin.spec.config.limits.deadline_ms) + 2 * EPOCH_TICK;
    per_retry * retries as u32 + RESTART_SLACK
}

/// What [`isolation_time`] allows beyond the retries themselves.
const RESTART_SLACK: Duration = Duration::from_secs(1);

impl StageRunner {
    fn run(
        &mut self,
        events: &mut Vec<Event>,
        dead: &mut Vec<DeadLetter>,
        mut trace: Option<&mut Vec<TraceEntry>>,
    ) {
        let started = Instant::now();
        let stats = self.plugin.stats.clone();
        let events_in = events.len() as u64;
        PluginStats::add(&stats.events_in, events_in);
        let counts = match self.attempt(events, dead, trace.as_deref_mut()) {
            Ok(counts) => counts,
            Err(failure) => {
                PluginStats::add(&stats.batch_failures, 1);
                crate::metrics::plugin_batch_failed(&self.plugin.name);
                self.isolate(events, failure, dead, trace)
            }
        };
        PluginStats::add(&stats.kept, counts.kept);
        PluginStats::add(&stats.routed, counts.routed);
        PluginStats::add(&stats.dropped, counts.dropped);
        PluginStats::add(&stats.failed, counts.failed);
        let elapsed = started.elapsed();
        PluginStats::add(&stats.nanos, elapsed.as_nanos() as u64);
        crate::metrics::plugin_batch(
            &self.plugin.name,
            [
                events_in,
                counts.kept,
                counts.routed,
                counts.dropped,
                counts.failed,
            ],
            elapsed,
        );
    }

    /// Calls the plugin on `events` and applies its reply. On failure `events` is left
    /// as it was: the whole reply is decoded and checked before any of it is applied.
    fn attempt(
        &mut self,
        events: &mut Vec<Event>,
        dead: &mut Vec<DeadLetter>,
        trace: Option<&mut Vec<TraceEntry>>,
    ) -> Result<Counts, PluginFailure> {
        let reply = self.call(events)?;
        let limits = &self.plugin.reply_limits;
        let decisions = Decisions::decode(&reply, events.len(), limits).map_err(|e| {
            // A bad reply means a broken guest: start a fresh instance next time.
            self.instance = None;
            PluginFailure::BadReply(e.to_string())
        })?;
        Ok(apply_reply(&self.plugin, &decisions, events, dead, trace))
    }

    /// After a batch failed as a whole: retries its halves, and theirs, so that only the
    /// events that make it fail follow the failure policy and the rest are processed as
    /// usual (one poison event must not dead-letter, or under `fail-open` pass unredacted,
    /// the 255 others). Bounded by [`isolation_budget`]; what is left when it runs out
    /// follows the policy.
    fn isolate(
        &mut self,
        events: &mut Vec<Event>,
        failure: PluginFailure,
        dead: &mut Vec<DeadLetter>,
        mut trace: Option<&mut Vec<TraceEntry>>,
    ) -> Counts {
        let mut budget = isolation_budget(events.len());
        let until = Instant::now() + isolation_time(&self.plugin, budget);
        let mut counts = Counts::default();
        let mut done = Vec::with_capacity(events.len());
        let mut pending = vec![Segment {
            events: std::mem::take(events),
            tried: true,
            failure,
        }];
        // Depth first, left half first, so `done` keeps the batch's order.
        while let Some(mut segment) = pending.pop() {
            if Instant::now() > until {
                budget = 0;
            }
            if !segment.tried && budget > 0 {
                budget -= 1;
                match self.attempt(&mut segment.events, dead, trace.as_deref_mut()) {
                    Ok(c) => {
                        counts += c;
                        done.append(&mut segment.events);
                        continue;
                    }
                    Err(failure) => {
                        segment.tried = true;
                        segment.failure = failure;
                    }
                }
            }
            if segment.tried && segment.events.len() > 1 && budget > 0 {
                let right = segment.events.split_off(segment.events.len() / 2);
                for half in [right, segment.events] {
                    pending.push(Segment {
                        events: half,
                        tried: false,
                        failure: segment.failure.clone(),
                    });
                }
                continue;
            }
            counts += self.fail_batch(
                &segment.failure,
                &mut segment.events,
                dead,
                trace.as_deref_mut(),
            );
            done.append(&mut segment.events);
        }
        *events = done;
        counts
    }

    /// Calls the plugin, restarting its instance first if the last call killed it.
    fn call(&mut self, events: &[Event]) -> Result<Vec<u8>, PluginFailure> {
        let instance = match &mut self.instance {
            Some(instance) => instance,
            empty => {
                PluginStats::add(&self.plugin.stats.restarts, 1);
                empty.insert(PluginInstance::start(&self.plugin)?)
            }
        };
        let result = instance.process(events);
        if matches!(&result, Err(f) if !matches!(f, PluginFailure::Error(_))) {
            // A trapped store cannot be trusted again.
            self.instance = None;
        }
        result
    }

    /// Applies the failure policy to `events`: under `fail-open` they stay, unchanged by
    /// this plugin; under `fail-closed` they move to `dead`, all sharing one reason.
    fn fail_batch(
        &self,
        failure: &PluginFailure,
        events: &mut Vec<Event>,
        dead: &mut Vec<DeadLetter>,
        trace: Option<&mut Vec<TraceEntry>>,
    ) -> Counts {
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
            return Counts {
                kept: events.len() as u64,
                ..Counts::default()
            };
        }
        let failed = events.len() as u64;
        let reason: Arc<str> = format!("plugin `{name}` {failure}").into();
        dead.extend(events.drain(..).map(|e| DeadLetter {
            raw: e.doc.into_text(),
            reason: reason.clone(),
            stage: Stage::Plugin(name.clone()),
            origin: e.origin,
        }));
        Counts {
            failed,
            ..Counts::default()
        }
    }
}

/// Applies a decoded reply to the batch.
fn apply_reply(
    plugin: &LoadedPlugin,
    decisions: &Decisions<'_>,
    events: &mut Vec<Event>,
    dead: &mut Vec<DeadLetter>,
    mut trace: Option<&mut Vec<TraceEntry>>,
) -> Counts {
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
                    reason: format!("plugin `{}`: {reason}", plugin.name).into(),
                    stage: Stage::Plugin(plugin.name.clone()),
                    origin: event.origin.clone(),
                });
                false
            }
        }
    });
    Counts {
        kept,
        routed,
        dropped,
        failed,
    }
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
