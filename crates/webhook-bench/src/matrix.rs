//! Receiver variants: `server:hmac:json[:slowN]`, e.g. `hyper:ring:serde` or `may:aws-lc:simd`.

/// Servers, HMAC and JSON backends the receivers offer (see `didit-receiver --help`).
pub const SERVERS: [&str; 4] = ["hyper", "may", "axum", "axum-naive"];
pub const HMACS: [&str; 3] = ["ring", "rustcrypto", "aws-lc"];
pub const JSONS: [&str; 3] = ["serde", "simd", "sonic"];

/// The default matrix: each server once on the common backends, the fastest HMAC on hyper, and
/// the naive peer as the reference.
pub const DEFAULT: [&str; 5] = [
    "may:ring:serde",
    "hyper:ring:serde",
    "hyper:aws-lc:serde",
    "axum:ring:serde",
    "axum-naive:ring:serde",
];

/// The naive peer, the in-run reference for "ratio to naive".
pub const NAIVE: &str = "axum-naive:ring:serde";

/// One receiver configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    pub server: String,
    pub hmac: String,
    pub json: String,
    /// Microseconds of deliberate extra work per delivery (`:slowN`, for testing the gate).
    pub slow_us: u64,
}

impl Variant {
    /// Parses `server:hmac:json[:slowN]`; the error names the valid choices.
    pub fn parse(s: &str) -> Result<Variant, String> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        if !(3..=4).contains(&parts.len()) {
            return Err(format!(
                "`{s}` is not server:hmac:json (e.g. hyper:ring:serde)"
            ));
        }
        let check = |what: &str, v: &str, valid: &[&str]| {
            if valid.contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "`{s}`: unknown {what} `{v}` (one of {})",
                    valid.join(", ")
                ))
            }
        };
        check("server", parts[0], &SERVERS)?;
        check("HMAC backend", parts[1], &HMACS)?;
        check("JSON backend", parts[2], &JSONS)?;
        let slow_us = match parts.get(3) {
            None => 0,
            Some(p) => p
                .strip_prefix("slow")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    format!("`{s}`: the fourth part must be slowN (µs of extra work)")
                })?,
        };
        Ok(Variant {
            // A slowed variant keeps its name, so `compare` matches it with its baseline; the
            // results record the slowdown next to it.
            name: parts[..3].join(":"),
            server: parts[0].into(),
            hmac: parts[1].into(),
            json: parts[2].into(),
            slow_us,
        })
    }

    /// The receiver's arguments for this variant.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--server".into(),
            self.server.clone(),
            "--hmac".into(),
            self.hmac.clone(),
            "--json".into(),
            self.json.clone(),
        ];
        if self.slow_us > 0 {
            a.push("--extra-work".into());
            a.push(format!("{}us", self.slow_us));
        }
        a
    }
}

/// Expands `--receivers`: `all`, `default`, or a comma-separated list. Unknown names are returned
/// as errors next to the valid variants, so the others still run.
pub fn expand(spec: &str) -> Vec<Result<Variant, (String, String)>> {
    let names: Vec<String> = match spec.trim() {
        "default" | "" => DEFAULT.iter().map(|s| (*s).to_owned()).collect(),
        "all" => {
            let mut v = Vec::new();
            for server in ["may", "hyper", "axum"] {
                for h in HMACS {
                    for j in JSONS {
                        v.push(format!("{server}:{h}:{j}"));
                    }
                }
            }
            v.push(NAIVE.to_owned());
            v
        }
        list => list.split(',').map(|s| s.trim().to_owned()).collect(),
    };
    names
        .into_iter()
        .filter(|n| !n.is_empty())
        .map(|n| Variant::parse(&n).map_err(|e| (n, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_bad_parts() {
        let v = Variant::parse("hyper:aws-lc:simd").expect("valid");
        assert_eq!(v.args()[1], "hyper");
        let slow = Variant::parse("may:ring:serde:slow200").expect("valid");
        assert_eq!(slow.slow_us, 200);
        assert_eq!(slow.name, "may:ring:serde");
        assert!(slow.args().contains(&"200us".to_owned()));
        let e = Variant::parse("nginx:ring:serde").expect_err("unknown server");
        assert!(
            e.contains("unknown server `nginx`") && e.contains("axum-naive"),
            "{e}"
        );
        assert!(Variant::parse("hyper:ring").is_err());
        assert!(Variant::parse("hyper:ring:serde:fast").is_err());
    }

    #[test]
    fn expands_lists_keeping_bad_names_as_errors() {
        assert_eq!(expand("default").len(), 5);
        assert_eq!(expand("all").len(), 28);
        let mixed = expand("hyper:ring:serde, bogus:ring:serde");
        assert!(mixed[0].is_ok());
        assert!(matches!(&mixed[1], Err((n, _)) if n == "bogus:ring:serde"));
    }
}
