//! The pickers of `pick_first` and `round_robin`, as pure functions over what the
//! balancer knows of its subchannels, so they are tested without sockets or clocks.

use super::backoff::SplitMix64;
use super::balance::ConnectivityState;

/// One subchannel as a picker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// Its state (READY only with a connection that takes new streams and, under
    /// health checking, a SERVING answer).
    pub(crate) state: ConnectivityState,
    /// The request's last attempt failed on this subchannel's connection (never
    /// sent, or refused): another READY one is preferred.
    pub(crate) avoided: bool,
}

/// What to do with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send it on this subchannel.
    Pick(usize),
    /// Wait: a subchannel is connecting (or idle and about to), a picker update will
    /// come.
    Queue,
    /// Every subchannel failed: fail the request (unless it waits for ready).
    Fail,
}

/// `round_robin`: the next READY subchannel from `cursor` on, in address order,
/// preferring one that is not avoided; `cursor` moves past the one picked. Without a
/// READY subchannel: wait while any is connecting or idle, else fail.
pub(crate) fn round_robin(candidates: &[Candidate], cursor: &mut usize) -> Decision {
    let n = candidates.len();
    if n == 0 {
        return Decision::Fail;
    }
    let start = *cursor % n;
    let order = || (0..n).map(|i| (start + i) % n);
    let ready = |i: &usize| candidates[*i].state == ConnectivityState::Ready;
    let chosen = order()
        .filter(ready)
        .find(|&i| !candidates[i].avoided)
        .or_else(|| order().find(ready));
    match chosen {
        Some(i) => {
            *cursor = i + 1;
            Decision::Pick(i)
        }
        None => waiting_or_failed(candidates),
    }
}

/// `pick_first`: the selected subchannel while it is READY; otherwise the first READY
/// one in address order (the connection pass just made it so). `avoided` is ignored:
/// pick_first keeps one connection, and a refused request goes back to it.
pub(crate) fn pick_first(candidates: &[Candidate], selected: Option<usize>) -> Decision {
    let ready = |i: usize| candidates[i].state == ConnectivityState::Ready;
    if let Some(i) = selected.filter(|&i| i < candidates.len() && ready(i)) {
        return Decision::Pick(i);
    }
    match (0..candidates.len()).find(|&i| ready(i)) {
        Some(i) => Decision::Pick(i),
        None if candidates.is_empty() => Decision::Fail,
        None => waiting_or_failed(candidates),
    }
}

fn waiting_or_failed(candidates: &[Candidate]) -> Decision {
    if candidates.iter().any(|c| {
        matches!(
            c.state,
            ConnectivityState::Connecting | ConnectivityState::Idle
        )
    }) {
        Decision::Queue
    } else {
        Decision::Fail
    }
}

/// Fisher–Yates shuffle (gRFC A62's `shuffleAddressList`).
pub(crate) fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectivityState::{Connecting, Idle, Ready, TransientFailure};

    fn c(state: ConnectivityState) -> Candidate {
        Candidate {
            state,
            avoided: false,
        }
    }

    fn picks(candidates: &[Candidate], cursor: &mut usize, n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| match round_robin(candidates, cursor) {
                Decision::Pick(i) => i,
                other => panic!("no pick: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn round_robin_cycles_over_ready_subchannels_in_order() {
        let all = [c(Ready), c(Ready), c(Ready)];
        let mut cursor = 0;
        assert_eq!(picks(&all, &mut cursor, 7), [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn round_robin_skips_subchannels_that_are_not_ready() {
        let some = [
            c(Ready),
            c(TransientFailure),
            c(Connecting),
            c(Ready),
            c(Idle),
        ];
        let mut cursor = 0;
        assert_eq!(picks(&some, &mut cursor, 4), [0, 3, 0, 3]);
    }

    #[test]
    fn round_robin_keeps_its_place_when_the_set_changes() {
        let mut cursor = 0;
        let all = [c(Ready), c(Ready), c(Ready)];
        assert_eq!(picks(&all, &mut cursor, 2), [0, 1]);
        // 2 fails: the turn passes to 0, not back to 1.
        let two_down = [c(Ready), c(Ready), c(TransientFailure)];
        assert_eq!(picks(&two_down, &mut cursor, 3), [0, 1, 0]);
    }

    #[test]
    fn a_retry_avoids_the_subchannel_that_refused_it_while_another_is_ready() {
        let mut cursor = 0;
        let mut set = [c(Ready), c(Ready), c(Ready)];
        set[0].avoided = true;
        assert_eq!(round_robin(&set, &mut cursor), Decision::Pick(1));
        // With 0 and 1 avoided, the first READY one that is not: 2.
        let mut cursor = 0;
        set[1].avoided = true;
        assert_eq!(round_robin(&set, &mut cursor), Decision::Pick(2));
        // Only the avoided one is ready: it is still used (better than failing).
        let only = [
            Candidate {
                state: Ready,
                avoided: true,
            },
            c(TransientFailure),
        ];
        assert_eq!(round_robin(&only, &mut 0), Decision::Pick(0));
    }

    #[test]
    fn without_a_ready_subchannel_requests_wait_while_one_connects_then_fail() {
        assert_eq!(
            round_robin(&[c(TransientFailure), c(Connecting)], &mut 0),
            Decision::Queue
        );
        assert_eq!(
            round_robin(&[c(Idle), c(TransientFailure)], &mut 0),
            Decision::Queue
        );
        assert_eq!(
            round_robin(&[c(TransientFailure), c(TransientFailure)], &mut 0),
            Decision::Fail
        );
        assert_eq!(round_robin(&[], &mut 0), Decision::Fail);
        assert_eq!(
            pick_first(&[c(TransientFailure), c(TransientFailure)], None),
            Decision::Fail
        );
        assert_eq!(
            pick_first(&[c(TransientFailure), c(Connecting)], None),
            Decision::Queue
        );
    }

    #[test]
    fn pick_first_sticks_to_its_selection_until_it_fails() {
        let set = [c(Ready), c(Ready), c(Ready)];
        for _ in 0..3 {
            assert_eq!(pick_first(&set, Some(1)), Decision::Pick(1));
        }
        let one_down = [c(Ready), c(TransientFailure), c(Ready)];
        assert_eq!(pick_first(&one_down, Some(1)), Decision::Pick(0));
        assert_eq!(pick_first(&one_down, None), Decision::Pick(0));
        let mut avoided = set;
        avoided[1].avoided = true;
        assert_eq!(pick_first(&avoided, Some(1)), Decision::Pick(1));
    }

    #[test]
    fn shuffle_is_a_permutation_and_depends_on_the_seed() {
        let original: Vec<u32> = (0..10).collect();
        let mut a = original.clone();
        shuffle(&mut a, &mut SplitMix64::new(1));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, original);
        assert_ne!(a, original);
        let mut b = original.clone();
        shuffle(&mut b, &mut SplitMix64::new(1));
        assert_eq!(a, b, "same seed, same order");
        let firsts: std::collections::HashSet<u32> = (0..64)
            .map(|seed| {
                let mut v = original.clone();
                shuffle(&mut v, &mut SplitMix64::new(seed));
                v[0]
            })
            .collect();
        assert!(
            firsts.len() >= 8,
            "every address gets to be first: {firsts:?}"
        );
    }
}
