//! The fuzz targets of `bgp/fuzz`, run on stable: each target's body (from
//! `bgp::wire::fuzzing`) over its seed corpus in `bgp/fuzz/corpus/<target>/`, then over a
//! bounded number of random mutations of those seeds. `cargo +nightly fuzz` (scripts/fuzz.sh)
//! explores far more; this keeps the same bodies honest in every `cargo test`.
//!
//! `BGP_WIRE_WRITE_CORPUS=1` rewrites the seed corpus from `fuzzing::seed_corpus()`.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use bgp::wire::fuzzing;

/// Mutated inputs per target; well under a second per target in a debug build.
const MUTATIONS: usize = 100_000;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One libFuzzer-like mutation: change, insert, delete or duplicate octets, favouring values
/// that sit on length and flag boundaries.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    const INTERESTING: [u8; 10] = [0, 1, 2, 3, 4, 0x10, 0x40, 0x80, 0xc0, 0xff];
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(input.len());
        let value = if rng.below(2) == 0 {
            INTERESTING[rng.below(INTERESTING.len())]
        } else {
            rng.next() as u8
        };
        match rng.below(5) {
            0 | 1 if !input.is_empty() => input[at] = value,
            2 => input.insert(at.min(input.len()), value),
            3 if !input.is_empty() => {
                input.remove(at);
            }
            4 if !input.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                let piece = input[at..end].to_vec();
                let to = rng.below(input.len());
                input.splice(to..to, piece);
            }
            _ => input.truncate(at),
        }
    }
}

fn seeds() -> BTreeMap<&'static str, Vec<Vec<u8>>> {
    let mut by_target: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    for (target, input) in fuzzing::seed_corpus() {
        by_target.entry(target).or_default().push(input);
    }
    by_target
}

#[test]
fn seed_corpus_is_on_disk() {
    let write = std::env::var_os("BGP_WIRE_WRITE_CORPUS").is_some();
    for (target, inputs) in seeds() {
        let dir = corpus_dir().join(target);
        for (i, input) in inputs.iter().enumerate() {
            let path = dir.join(format!("seed-{i:02}"));
            if write {
                fs::create_dir_all(&dir).unwrap();
                fs::write(&path, input).unwrap();
            }
            assert_eq!(
                fs::read(&path).ok().as_ref(),
                Some(input),
                "{} is stale; rerun with BGP_WIRE_WRITE_CORPUS=1",
                path.display()
            );
        }
    }
}

#[test]
fn every_target_has_a_corpus() {
    let seeds = seeds();
    for (name, _) in fuzzing::TARGETS {
        assert!(seeds.contains_key(name), "no seeds for {name}");
    }
}

#[test]
fn targets_survive_their_corpus_and_mutations() {
    for (name, target) in fuzzing::TARGETS {
        let dir = corpus_dir().join(name);
        // Everything in the directory: the seeds and any crash reproducers added later.
        let mut corpus: Vec<Vec<u8>> = fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| fs::read(e.ok()?.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        corpus.sort();
        assert!(!corpus.is_empty(), "{} is empty", dir.display());
        for input in &corpus {
            target(input);
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        for _ in 0..MUTATIONS {
            let mut input = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &mut input);
            target(&input);
        }
    }
}
