//! `${VAR}` substitution in config text, so secrets stay out of config files.

/// A `${VAR}` with no value in the environment and no default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: environment variable `{name}` is not set (write `${{{name}:-default}}` for a default)")]
pub struct MissingVar {
    /// The variable's name.
    pub name: String,
    /// 1-based line of the reference.
    pub line: usize,
    /// 1-based column of the reference.
    pub column: usize,
}

/// Replaces every `${NAME}` / `${NAME:-default}` outside comment lines with the variable's
/// value. Substitution happens before TOML parsing and never adds lines, so parse errors
/// still point at the right line. `$${` is a literal `${`.
pub fn substitute(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, MissingVar> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find('$') {
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            if let Some(escaped) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = escaped;
                continue;
            }
            let Some(body_end) = after.strip_prefix("${").and_then(|b| b.find('}')) else {
                out.push('$');
                rest = &after[1..];
                continue;
            };
            let body = &after[2..2 + body_end];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            match lookup(name).or_else(|| default.map(str::to_owned)) {
                Some(value) => out.push_str(&value),
                None => {
                    let column = line.len() - after.len() + 1;
                    return Err(MissingVar {
                        name: name.to_owned(),
                        line: n + 1,
                        column,
                    });
                }
            }
            rest = &after[2 + body_end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "ES_PASS").then(|| "s3cret".to_owned())
    }

    #[test]
    fn replaces_variables_and_defaults() {
        let text = "password = \"${ES_PASS}\"\nuser = \"${ES_USER:-elastic}\"\n";
        assert_eq!(
            substitute(text, env).unwrap(),
            "password = \"s3cret\"\nuser = \"elastic\"\n"
        );
    }

    #[test]
    fn a_missing_variable_names_it_with_its_position() {
        let err = substitute("a = 1\n  key = \"${NOPE}\"\n", env).unwrap_err();
        assert_eq!((err.name.as_str(), err.line, err.column), ("NOPE", 2, 10));
    }

    #[test]
    fn comments_escapes_and_lone_dollars_are_left_alone() {
        let text = "# uses ${NOPE}\nprice = \"$5 and $${literal}\"\n";
        assert_eq!(
            substitute(text, env).unwrap(),
            "# uses ${NOPE}\nprice = \"$5 and ${literal}\"\n"
        );
    }
}
