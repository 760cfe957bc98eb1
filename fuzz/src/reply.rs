//! A plugin reply run through the host's side: decoded, checked to encode back to the
//! same bytes, and each event's decision applied to a small event.

use serde_json::Value as Json;
use weir_wire::doc::Doc;
use weir_wire::json::{apply, settle, to_json, Fate, TAGS_FIELD};
use weir_wire::{Decisions, Edit, Outcome, Path, ReplyWriter};

use crate::check_written;
use crate::limits::path_too_deep;

/// The events replies are applied to, in turn: nested text left as it arrived (an edit
/// below it parses it), arrays to index, a lone string tag, `tags` that is no list.
pub const EVENTS: [&str; 3] = [
    r#"{"level":"info","ctx":{"ip":"1.2.3.4","list":[{"k":"v"},2,[3]]},"tags":"old","n":1}"#,
    r#"{"message":"GET /x","users":[{"email":"a@b.c"}],"tags":["t"],"a.b":{"c":null}}"#,
    r#"{"tags":5,"s":"a\"b","deep":{"a":{"b":{"c":{"d":[1,{"e":true}]}}}}}"#,
];

/// Decodes `buf` as the reply to a batch of `events` events and, when it decodes,
/// checks it and applies it. Replies with a path deeper than the harness allows are
/// skipped (see [`crate::limits`]).
pub fn run(buf: &[u8], events: usize) {
    let Ok(decisions) = Decisions::decode(buf, events) else {
        return;
    };
    let decided: Vec<(Outcome<'_>, &[Edit<'_>])> = decisions.iter().collect();
    assert_eq!(
        decided.len(),
        events,
        "decode accepted a wrong decision count"
    );
    assert_eq!(
        reencode(&decided),
        buf,
        "a decoded reply does not encode back to itself"
    );
    let too_deep = decided.iter().flat_map(|(_, e)| e.iter()).any(|e| match e {
        Edit::Set(p, _) | Edit::Remove(p) => path_too_deep(p),
        Edit::Tag(_) => false,
    });
    if too_deep {
        return;
    }
    let base: Vec<Doc> = EVENTS
        .iter()
        .map(|t| Doc::parse((*t).into()).unwrap())
        .collect();
    for (i, (outcome, edits)) in decided.into_iter().enumerate() {
        settle_and_check(&base[i % base.len()], outcome, edits);
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

/// Settles one event as the host does, and checks it against the edits applied one at a
/// time, each of which must have the effect it names.
fn settle_and_check(base: &Doc, outcome: Outcome<'_>, edits: &[Edit<'_>]) {
    let mut settled = base.clone();
    let fate = settle(&mut settled, edits, outcome);
    match (outcome, &fate) {
        (Outcome::Drop, Fate::Drop) => return,
        (Outcome::Fail(r), Fate::Fail(f)) if r == f => return,
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
    let mut stepwise = base.clone();
    for edit in edits {
        apply(&mut stepwise, edit).expect("an edit settle applied fails on its own");
        check_effect(&stepwise, edit);
    }
    assert_eq!(
        check_written(&settled),
        check_written(&stepwise),
        "settle and one-by-one edits disagree"
    );
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
            let got = doc.lookup(&path).map(|n| n.to_value());
            assert_eq!(got.as_ref(), Some(&want), "after setting {path}");
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
                        .is_some_and(|n| n.to_value().is_object())
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
            let tags = doc.get(TAGS_FIELD).map(|n| n.to_value());
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
