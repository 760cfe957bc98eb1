//! One field value as it crosses the boundary.

use crate::cursor::{put_str, Cursor};
use crate::WireError;

pub(crate) const ABSENT: u8 = 0;
const NULL: u8 = 1;
const FALSE: u8 = 2;
const TRUE: u8 = 3;
const INT: u8 = 4;
const UINT: u8 = 5;
const FLOAT: u8 = 6;
const STR: u8 = 7;
const JSON: u8 = 8;

/// A field value borrowed from a buffer.
///
/// Scalars travel as themselves; an object or array travels as JSON text ([`Value::Json`]),
/// because plugins rarely need whole sub-trees and should not pay for them when they don't.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// JSON `null`.
    Null,
    /// JSON `true` / `false`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// A non-negative integer above `i64::MAX`.
    Uint(u64),
    /// Any other number.
    Float(f64),
    /// A JSON string.
    Str(&'a str),
    /// An object or array, as JSON text.
    Json(&'a str),
}

impl<'a> Value<'a> {
    /// The text of a string value.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a number, whatever its representation.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Uint(u) => Some(u as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The value of an integer that fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The value of a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The tag byte that introduces this kind of value.
    pub(crate) fn tag(&self) -> u8 {
        match *self {
            Value::Null => NULL,
            Value::Bool(false) => FALSE,
            Value::Bool(true) => TRUE,
            Value::Int(_) => INT,
            Value::Uint(_) => UINT,
            Value::Float(_) => FLOAT,
            Value::Str(_) => STR,
            Value::Json(_) => JSON,
        }
    }

    /// Appends this value's tag and payload.
    pub(crate) fn write(&self, buf: &mut Vec<u8>) {
        buf.push(self.tag());
        match *self {
            Value::Null | Value::Bool(_) => {}
            Value::Int(i) => buf.extend_from_slice(&i.to_le_bytes()),
            Value::Uint(u) => buf.extend_from_slice(&u.to_le_bytes()),
            Value::Float(f) => buf.extend_from_slice(&f.to_le_bytes()),
            Value::Str(s) | Value::Json(s) => put_str(buf, s),
        }
    }

    /// Reads a value, or `None` for the absent marker.
    pub(crate) fn read(cur: &mut Cursor<'a>) -> Result<Option<Value<'a>>, WireError> {
        let at = cur.pos();
        Ok(Some(match cur.u8("value tag")? {
            ABSENT => return Ok(None),
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => Value::Int(cur.u64("integer")? as i64),
            UINT => Value::Uint(cur.u64("integer")?),
            FLOAT => Value::Float(f64::from_bits(cur.u64("float")?)),
            STR => Value::Str(cur.str("string")?),
            JSON => Value::Json(cur.str("json text")?),
            tag => {
                return Err(WireError::UnknownTag {
                    at,
                    tag,
                    what: "value",
                })
            }
        }))
    }

    /// Reads a value that must be present.
    pub(crate) fn read_present(cur: &mut Cursor<'a>) -> Result<Value<'a>, WireError> {
        let at = cur.pos();
        Value::read(cur)?.ok_or(WireError::UnknownTag {
            at,
            tag: ABSENT,
            what: "present value",
        })
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Str(s)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Self {
        Value::Str(s)
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value<'_> {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value<'_> {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(-42),
            Value::Uint(u64::MAX),
            Value::Float(45.25),
            Value::Str("héllo"),
            Value::Json(r#"{"a":[1,2]}"#),
        ];
        let mut buf = Vec::new();
        for v in &values {
            v.write(&mut buf);
        }
        buf.push(ABSENT);
        let mut cur = Cursor::new(&buf);
        for v in &values {
            assert_eq!(Value::read(&mut cur).unwrap(), Some(*v));
        }
        assert_eq!(Value::read(&mut cur).unwrap(), None);
        assert!(cur.is_empty());
    }

    #[test]
    fn truncated_and_unknown_input_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        Value::Str("abcdef").write(&mut buf);
        buf.truncate(buf.len() - 2);
        assert!(matches!(
            Value::read(&mut Cursor::new(&buf)),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            Value::read(&mut Cursor::new(&[99])),
            Err(WireError::UnknownTag { tag: 99, .. })
        ));
        let bad = [STR, 2, 0, 0, 0, 0xff, 0xfe];
        assert!(matches!(
            Value::read(&mut Cursor::new(&bad)),
            Err(WireError::BadUtf8 { .. })
        ));
    }
}
