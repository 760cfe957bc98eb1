//! A plugin reply run through the host's side: decoded under the default limits, checked
//! to stay within them and to encode back to the same bytes, and each event's decision
//! applied to a small event (one of them nested to the limit) as the host applies it.

use std::sync::OnceLock;

use serde_json::Value as Json;
use weir_wire::doc::Doc;
use weir_wire::json::{apply, settle, to_json, Fate, TAGS_FIELD};
use weir_wire::limits::{
    DEFAULT_MAX_DEPTH, MAX_EDITS_PER_EVENT, MAX_EDITS_PER_REPLY, MAX_LABEL_BYTES, MAX_PATH_BYTES,
    MAX_REASON_BYTES,
};
use weir_wire::{Decisions, Edit, Outcome, Path, ReplyLimits, ReplyWriter, Value};

use crate::{check_written, shape};

/// The events replies are applied to, in turn: nested text left as it arrived (an edit
/// below it parses it), arrays to index, a lone string tag, `tags` that is no list; the
/// last is built by [`base`] and nests exactly [`DEFAULT_MAX_DEPTH`] levels.
pub const EVENTS: [&str; 3] = [
    r#"{"level":"info","ctx":{"ip":"1.2.3.4","list":[{"k":"v"},2,[3]]},"tags":"old","n":1}"#,
    r#"{"message":"GET /x","users":[{"email":"a@b.c"}],"tags":["t"],"a.b":{"c":null}}"#,
    r#"{"tags":5,"s":"a\"b","deep":{"a":{"b":{"c":{"d":[1,{"e":true}]}}}}}"#,
];

/// The limits the host applies by default.
const LIMITS: ReplyLimits = ReplyLimits {
    max_depth: DEFAULT_MAX_DEPTH,
};

/// [`EVENTS`] parsed, plus one nesting [`DEFAULT_MAX_DEPTH`] levels:
/// `{"deep":{"a":[[…[{"k":"v"}]…]]},"tags":[]}`.
fn base() -> &'static [Doc] {
    static BASE: OnceLock<Vec<Doc>> = OnceLock::new();
    BASE.get_or_init(|| {
        // The event, `deep`'s object and the innermost object are 3 levels.
        let arrays = DEFAULT_MAX_DEPTH - 3;
        let deepest = format!(
            r#"{{"deep":{{"a":{}{{"k":"v"}}{}}},"tags":[]}}"#,
            "[".repeat(arrays),
            "]".repeat(arrays)
        );
        assert_eq!(shape(&deepest).depth, DEFAULT_MAX_DEPTH);
        EVENTS
            .iter()
            .map(|t| (*t).to_owned())
            .chain([deepest])
            .map(|t| Doc::parse(t).expect("a base event parses"))
            .collect()
    })
}

/// A node's value; the events here hold no number serde_json cannot represent.
fn node_value(node: weir_wire::doc::Node<'_>) -> Json {
    crate::node_value(node).expect("a number out of range")
}

/// Decodes `buf` as the reply to a batch of `events` events under the default limits
/// and, when it decodes, checks it and applies it.
pub fn run(buf: &[u8], events: usize) {
    let Ok(decisions) = Decisions::decode(buf, events, &LIMITS) else {
        return;
    };
    let decided: Vec<(Outcome<'_>, &[Edit<'_>])> = decisions.iter().collect();
    assert_eq!(
        decided.len(),
        events,
        "decode accepted a wrong decision count"
    );
    check_within_limits(&decided);
    assert_eq!(
        reencode(&decided),
        buf,
        "a decoded reply does not encode back to itself"
    );
    let base = base();
    for (i, (outcome, edits)) in decided.into_iter().enumerate() {
        settle_and_check(&base[i % base.len()], outcome, edits);
    }
}

/// Checks an accepted reply keeps to the bounds `decode` enforces, counted here apart.
fn check_within_limits(decided: &[(Outcome<'_>, &[Edit<'_>])]) {
    let total: usize = decided.iter().map(|(_, e)| e.len()).sum();
    assert!(total <= MAX_EDITS_PER_REPLY, "{total} edits in one reply");
    for (outcome, edits) in decided {
        assert!(edits.len() <= MAX_EDITS_PER_EVENT, "{} edits", edits.len());
        if let Outcome::Route(target) = outcome {
            assert!(target.len() <= MAX_LABEL_BYTES, "route of {}", target.len());
        }
        for edit in *edits {
            let (path, value) = match *edit {
                Edit::Tag(tag) => {
                    assert!(tag.len() <= MAX_LABEL_BYTES, "tag of {}", tag.len());
                    continue;
                }
                Edit::Set(path, value) => (path, Some(value)),
                Edit::Remove(path) => (path, None),
            };
            assert!(path.len() <= MAX_PATH_BYTES, "path of {}", path.len());
            let segments = path.bytes().filter(|b| *b == b'.').count() + 1;
            let depth = match value {
                Some(Value::Json(text)) => shape(text).depth,
                _ => 0,
            };
            assert!(
                segments + depth <= LIMITS.max_depth,
                "an edit of {segments} segments setting a value {depth} deep"
            );
        }
    }
}

/// The bytes a plugin writes for these decisions.
fn reencode(decided: &[(Outcome<'_>, &[Edit<'_>])]) -> Vec<u8> {
    let mut w = ReplyWriter::default();
    for (outcome, edits) in decided {
        for edit in *edits {
            match *edit {
                Edit::Set(path, value) => w.set(path, value),
                Edit::Remove(path) => w.remove(path),
                Edit::Tag(tag) => w.tag(tag),
            }
        }
        w.outcome(*outcome);
    }
    w.into_bytes()
}

/// Settles one event as the host does, checks the result is an event the host can
/// write and read back within the nesting limit, and checks it against the edits applied
/// one at a time, each of which must have the effect it names.
fn settle_and_check(base: &Doc, outcome: Outcome<'_>, edits: &[Edit<'_>]) {
    let mut settled = base.clone();
    let fate = settle(&mut settled, edits, outcome);
    match (outcome, &fate) {
        (Outcome::Drop, Fate::Drop) => return,
        (Outcome::Fail(r), Fate::Fail(f)) => {
            check_reason(r, f);
            return;
        }
        (Outcome::Keep | Outcome::Route(_), Fate::Fail(why)) => {
            assert!(
                why.starts_with("edit rejected: "),
                "unexpected failure {why:?}"
            );
            assert!(
                !applies_cleanly(base, edits),
                "settle rejected edits that apply one by one: {why}"
            );
            return;
        }
        (Outcome::Keep, Fate::Keep) => {}
        (Outcome::Route(t), Fate::Route(f)) if t == f => {}
        _ => panic!("outcome {outcome:?} became {fate:?}"),
    }
    // What the sink writes: valid JSON nesting at most the limit (counted by
    // `weir_wire::nesting_depth` and apart), that `Doc::parse` accepts again.
    check_written(&settled, DEFAULT_MAX_DEPTH);
    let mut stepwise = base.clone();
    for edit in edits {
        apply(&mut stepwise, edit).expect("an edit settle applied fails on its own");
        check_effect(&stepwise, edit);
    }
    // `settle` adds an event's tags together (`apply_all`), after the edits that do not
    // touch `tags`: the same event, but a `tags` field it creates may come later among
    // the top-level fields than one tag at a time puts it. Compared apart.
    let tags = |d: &Doc| d.get(TAGS_FIELD).map(node_value);
    assert!(
        tags(&settled) == tags(&stepwise),
        "settle and one-by-one edits leave different tags: {:?} vs {:?}",
        tags(&settled),
        tags(&stepwise)
    );
    let (mut a, mut b) = (settled, stepwise);
    a.remove(TAGS_FIELD);
    b.remove(TAGS_FIELD);
    assert_eq!(
        check_written(&a, DEFAULT_MAX_DEPTH),
        check_written(&b, DEFAULT_MAX_DEPTH),
        "settle and one-by-one edits disagree"
    );
}

/// A fail reason is kept whole up to [`MAX_REASON_BYTES`], and a longer one cut near
/// there (on a character boundary) and marked.
fn check_reason(reason: &str, kept: &str) {
    if reason.len() <= MAX_REASON_BYTES {
        assert_eq!(reason, kept, "a short reason was changed");
        return;
    }
    let common = reason
        .bytes()
        .zip(kept.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        common + 4 > MAX_REASON_BYTES && kept.len() < MAX_REASON_BYTES + 64,
        "a reason of {} bytes kept as {} bytes ({common} in common)",
        reason.len(),
        kept.len()
    );
    assert!(kept.contains("truncated"), "a cut reason is not marked");
}

/// Whether every edit applies to a copy of `base`, in order.
fn applies_cleanly(base: &Doc, edits: &[Edit<'_>]) -> bool {
    let mut doc = base.clone();
    edits.iter().all(|e| apply(&mut doc, e).is_ok())
}

/// Checks that an edit just applied did what it says: a set value is there, a removed
/// object member is gone, a tag is in `tags`.
fn check_effect(doc: &Doc, edit: &Edit<'_>) {
    match *edit {
        Edit::Set(path, value) => {
            let want = to_json(path, value).expect("a set that applied has a JSON value");
            let path = Path::parse(path).expect("a set that applied has a valid path");
            let got = doc.lookup(&path).map(node_value);
            assert!(got.as_ref() == Some(&want), "after setting {path}");
        }
        Edit::Remove(path) => {
            let Some(parsed) = Path::parse(path) else {
                return;
            };
            let segments = parsed.segments();
            let parent_is_object = match segments.split_last() {
                Some((_, [])) => true,
                Some((_, parents)) => {
                    let parent = parents
                        .iter()
                        .fold(String::new(), |p, s| weir_wire::join_path(&p, &s.key));
                    let parent = Path::parse(&parent).expect("joined segments parse");
                    doc.lookup(&parent)
                        .is_some_and(|n| node_value(n).is_object())
                }
                None => false,
            };
            if parent_is_object {
                assert!(
                    doc.lookup(&parsed).is_none(),
                    "{path} still there after removing it"
                );
            }
        }
        Edit::Tag(tag) => {
            let tags = doc.get(TAGS_FIELD).map(node_value);
            let Some(Json::Array(items)) = tags else {
                panic!("tags is {tags:?} after adding tag {tag:?}");
            };
            assert!(
                items.iter().any(|t| t.as_str() == Some(tag)),
                "tag {tag:?} missing"
            );
        }
    }
}
