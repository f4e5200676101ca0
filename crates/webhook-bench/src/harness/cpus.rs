//! Core sets, as `taskset -c` writes them (`0`, `0-7`, `0,2,8-15`): which cores the receiver,
//! the generator and the brokers get.

use std::fmt;
use std::str::FromStr;

/// A non-empty set of core numbers, kept sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuSet(Vec<usize>);

/// A core list that cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a core list like 0, 0-7 or 0,2,8-15: {why}")]
pub struct CpuSetError {
    text: String,
    why: &'static str,
}

impl FromStr for CpuSet {
    type Err = CpuSetError;

    fn from_str(text: &str) -> Result<CpuSet, CpuSetError> {
        let err = |why| CpuSetError {
            text: text.to_owned(),
            why,
        };
        let mut cores = Vec::new();
        for part in text.trim().split(',') {
            let part = part.trim();
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a, b),
                None => (part, part),
            };
            let a: usize = a.trim().parse().map_err(|_| err("not a number"))?;
            let b: usize = b.trim().parse().map_err(|_| err("not a number"))?;
            if b < a {
                return Err(err("a range runs downwards"));
            }
            if b - a > 4096 {
                return Err(err("more than 4,096 cores"));
            }
            cores.extend(a..=b);
        }
        cores.sort_unstable();
        let n = cores.len();
        cores.dedup();
        if cores.len() != n {
            return Err(err("a core is listed twice"));
        }
        Ok(CpuSet(cores))
    }
}

impl fmt::Display for CpuSet {
    /// The shortest `taskset -c` list: runs of consecutive cores as ranges.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

impl CpuSet {
    /// Cores `from..from + n`.
    pub fn range(from: usize, n: usize) -> CpuSet {
        CpuSet((from..from + n.max(1)).collect())
    }

    /// How many cores.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never: a set is parsed non-empty and built non-empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn cores(&self) -> &[usize] {
        &self.0
    }

    /// The highest core number.
    pub fn max(&self) -> usize {
        self.0.last().copied().unwrap_or(0)
    }

    pub fn overlaps(&self, other: &CpuSet) -> bool {
        self.0.iter().any(|c| other.0.contains(c))
    }

    /// The cores of a machine with `cores` cores that neither set uses (empty if none).
    pub fn spare(cores: usize, used: &[&CpuSet]) -> Option<CpuSet> {
        let free: Vec<usize> = (0..cores)
            .filter(|c| !used.iter().any(|s| s.0.contains(c)))
            .collect();
        (!free.is_empty()).then_some(CpuSet(free))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_print_as_taskset_writes_them() {
        for (text, cores, shown) in [
            ("0", vec![0], "0"),
            ("0-3", vec![0, 1, 2, 3], "0-3"),
            ("8-15,0", (0..1).chain(8..16).collect(), "0,8-15"),
            (" 1, 3 ,5-6", vec![1, 3, 5, 6], "1,3,5-6"),
        ] {
            let s: CpuSet = text.parse().expect(text);
            assert_eq!(s.cores(), cores.as_slice(), "{text}");
            assert_eq!(s.to_string(), shown);
        }
        for bad in ["", "a", "3-1", "0,0", "1-", "0-99999"] {
            assert!(bad.parse::<CpuSet>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn spare_cores_are_those_no_set_uses() {
        let rx: CpuSet = "0-3".parse().expect("set");
        let generator: CpuSet = "4-7".parse().expect("set");
        assert_eq!(
            CpuSet::spare(16, &[&rx, &generator]).map(|s| s.to_string()),
            Some("8-15".into())
        );
        assert_eq!(CpuSet::spare(8, &[&rx, &generator]), None);
        assert!(rx.overlaps(&"3".parse().expect("set")));
        assert!(!rx.overlaps(&generator));
    }
}
