//! Sharding: worker K of N takes inputs K, K+N, K+2N, ... of the whole list, so that every worker
//! given the same list takes a stable share and the shares cover the list once. `auto` reads the
//! worker's place from a Slurm job array or a Kubernetes Indexed Job.

use std::str::FromStr;

/// One worker's place among the workers of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This worker, from 0.
    pub index: usize,
    /// How many workers.
    pub count: usize,
}

/// How the shard is given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    /// `K/N`.
    Fixed(Shard),
    /// `auto` or `auto/N`: from the environment, with the count given for Kubernetes.
    Auto(Option<usize>),
}

impl FromStr for ShardSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{text}` is not a shard: give K/N (worker K of N, K from 0 to N-1), auto, or auto/N")
        };
        let (first, count) = match text.split_once('/') {
            Some((first, count)) => (first, Some(count.parse::<usize>().map_err(|_| bad())?)),
            None => (text, None),
        };
        if count == Some(0) {
            return Err(format!(
                "`{text}`: the number of workers must be at least 1"
            ));
        }
        if first == "auto" {
            return Ok(Self::Auto(count));
        }
        let index: usize = first.parse().map_err(|_| bad())?;
        let count = count.ok_or_else(bad)?;
        Shard::new(index, count)
            .map(Self::Fixed)
            .map_err(|e| format!("`{text}`: {e}"))
    }
}

impl Shard {
    /// Worker `index` of `count`.
    ///
    /// # Errors
    /// An index not below the count, or no workers.
    pub fn new(index: usize, count: usize) -> Result<Self, String> {
        if count == 0 {
            return Err("the number of workers must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "worker {index} of {count} does not exist: workers are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(Self { index, count })
    }

    /// Whether the input at `position` of the whole list is this worker's.
    pub fn takes(&self, position: usize) -> bool {
        position % self.count == self.index
    }
}

impl ShardSpec {
    /// The shard, reading the environment through `var` for `auto`.
    ///
    /// # Errors
    /// `auto` outside a job array, or with values that make no sense.
    pub fn resolve(self, var: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let count_given = match self {
            Self::Fixed(shard) => return Ok(shard),
            Self::Auto(count) => count,
        };
        let number = |name: &str| -> Result<Option<usize>, String> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| format!("{name}={v} is not a whole number"))
                })
                .transpose()
        };
        if let Some(task) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = match (count_given, number("SLURM_ARRAY_TASK_MAX")?) {
                (Some(count), _) => count,
                (None, Some(max)) if max >= min => max - min + 1,
                _ => number("SLURM_ARRAY_TASK_COUNT")?.ok_or(
                    "--shard auto: Slurm gives the task ID but not the array's size; give --shard auto/N",
                )?,
            };
            let index = task.checked_sub(min).ok_or_else(|| {
                format!("SLURM_ARRAY_TASK_ID {task} is below SLURM_ARRAY_TASK_MIN {min}")
            })?;
            return Self::new_checked(index, count, "the Slurm job array");
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = count_given.ok_or(
                "--shard auto: a Kubernetes Indexed Job gives the index but not the count; give --shard auto/N with N = completions",
            )?;
            return Self::new_checked(index, count, "the Kubernetes Indexed Job");
        }
        Err("--shard auto: not in a Slurm job array (no SLURM_ARRAY_TASK_ID) nor a Kubernetes Indexed Job (no JOB_COMPLETION_INDEX); give --shard K/N".into())
    }

    fn new_checked(index: usize, count: usize, source: &str) -> Result<Shard, String> {
        Shard::new(index, count).map_err(|e| format!("--shard auto, from {source}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn fixed_shards_split_the_list_once() {
        let shards: Vec<Shard> = (0..3).map(|k| Shard::new(k, 3).expect("valid")).collect();
        for position in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.takes(position)).count(), 1);
        }
        assert!(shards[1].takes(1) && shards[1].takes(4) && !shards[1].takes(2));
    }

    #[test]
    fn nonsense_shards_are_refused() {
        for bad in ["3/3", "0/0", "1", "a/b", "-1/2", "auto/0"] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
        assert_eq!(
            "1/4".parse::<ShardSpec>(),
            Ok(ShardSpec::Fixed(Shard { index: 1, count: 4 }))
        );
    }

    #[test]
    fn auto_reads_slurm_arrays_and_kubernetes_indexed_jobs() {
        let auto = ShardSpec::Auto(None);
        // An array 1-3: task 3 is the third worker of three.
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert_eq!(auto.resolve(slurm), Ok(Shard { index: 2, count: 3 }));
        let count_only = env(&[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]);
        assert_eq!(auto.resolve(count_only), Ok(Shard { index: 0, count: 2 }));
        let kubernetes = env(&[("JOB_COMPLETION_INDEX", "4")]);
        assert!(auto.resolve(&kubernetes).is_err(), "count needed");
        assert_eq!(
            ShardSpec::Auto(Some(5)).resolve(&kubernetes),
            Ok(Shard { index: 4, count: 5 })
        );
        assert!(ShardSpec::Auto(Some(4)).resolve(&kubernetes).is_err());
        assert!(auto
            .resolve(env(&[]))
            .is_err_and(|e| e.contains("--shard K/N")));
    }

    mod fuzz {
        use super::*;
        use crate::fuzzing::any_text;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_shard_text_is_a_valid_shard_or_refused(text in any_text(16)) {
                if let Ok(ShardSpec::Fixed(shard)) = text.parse::<ShardSpec>() {
                    prop_assert!(shard.index < shard.count);
                }
            }

            #[test]
            fn any_environment_gives_a_valid_shard_or_a_reason(
                id in any_text(6), min in any_text(4), max in any_text(4), count in 0..4usize,
            ) {
                let pairs = [
                    ("SLURM_ARRAY_TASK_ID", id.as_str()),
                    ("SLURM_ARRAY_TASK_MIN", min.as_str()),
                    ("SLURM_ARRAY_TASK_MAX", max.as_str()),
                ];
                let given = (count > 0).then_some(count);
                if let Ok(shard) = ShardSpec::Auto(given).resolve(env(&pairs)) {
                    prop_assert!(shard.index < shard.count);
                }
            }
        }
    }
}
