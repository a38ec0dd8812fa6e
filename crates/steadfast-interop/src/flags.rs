//! grpc's interop flags: `--name=value` or `--name value`; booleans also as `--name`.

use std::collections::HashMap;
use std::fmt;

/// Parsed `--name=value` flags.
#[derive(Debug, Default)]
pub struct Flags(HashMap<String, String>);

/// A flag that is malformed or has a value of the wrong kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagError(String);

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FlagError {}

impl Flags {
    /// Parses `args` (without the program name); only names in `known` are accepted.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        known: &[&str],
    ) -> Result<Self, FlagError> {
        let mut flags = HashMap::new();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(FlagError(format!("unexpected argument {arg:?}")));
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => match args.peek() {
                    Some(next) if !next.starts_with("--") => {
                        (flag.to_owned(), args.next().unwrap_or_default())
                    }
                    _ => (flag.to_owned(), "true".to_owned()),
                },
            };
            if !known.contains(&name.as_str()) {
                return Err(FlagError(format!(
                    "unknown flag --{name} (known: --{})",
                    known.join(", --")
                )));
            }
            flags.insert(name, value);
        }
        Ok(Self(flags))
    }

    /// The value of `--name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `--name` as a string, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    /// `--name` as a boolean (`true`/`false`), or `false`.
    pub fn boolean(&self, name: &str) -> Result<bool, FlagError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(FlagError(format!("--{name}={other}: not true or false"))),
        }
    }

    /// `--name` as a port, or `default`.
    pub fn port(&self, name: &str, default: u16) -> Result<u16, FlagError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|e| FlagError(format!("--{name}={value}: not a port: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, FlagError> {
        Flags::parse(
            args.iter().map(|s| s.to_string()),
            &["port", "use_tls", "test_case"],
        )
    }

    #[test]
    fn both_spellings_and_bare_booleans() {
        let flags = parse(&["--port=8080", "--test_case", "empty_unary", "--use_tls"]).unwrap();
        assert_eq!(flags.port("port", 0), Ok(8080));
        assert_eq!(flags.get("test_case"), Some("empty_unary"));
        assert_eq!(flags.boolean("use_tls"), Ok(true));
    }

    #[test]
    fn unknown_and_malformed_flags_are_errors() {
        assert!(parse(&["--nope=1"]).is_err());
        assert!(parse(&["port"]).is_err());
        assert!(parse(&["--use_tls=maybe"])
            .unwrap()
            .boolean("use_tls")
            .is_err());
        assert!(parse(&["--port=http"]).unwrap().port("port", 0).is_err());
    }
}
