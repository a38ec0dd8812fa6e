//! Prometheus expositions read back by a parser this project did not write: Python
//! `prometheus_client`'s OpenMetrics parser (`peers/parse_metrics.py`; PyPI
//! `prometheus-client`, pinned in scripts/requirements.txt).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Every sample of `exposition`, as the parser read it: objects with `name`,
/// `labels` and `value`. Panics (with the exposition) if the parser rejects it.
pub fn parse_exposition(exposition: &str) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/parse_metrics.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (prometheus-client: scripts/requirements.txt)");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(exposition.as_bytes())
        .expect("the parser reads its input");
    let out = child.wait_with_output().expect("the parser ends");
    assert!(
        out.status.success(),
        "the parser rejected the exposition: {}\n{exposition}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(Value::Array(samples)) => samples,
        other => panic!("the parser printed no list of samples: {other:?}"),
    }
}

/// The value of the sample `name` whose labels include `labels` (exactly one must).
pub fn sample_value(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Value> = samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one sample {name} {labels:?} in {samples:#?}"
    );
    found[0]["value"].as_f64().expect("a numeric value")
}
