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
    /// Requests in flight on its connection (`least_request` compares them).
    pub(crate) load: usize,
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

/// `least_request` (power of two choices): of two READY subchannels drawn at random
/// — from those not avoided, if there are any — the one with fewer requests in
/// flight (the first drawn on a tie). One READY subchannel is picked outright.
/// Without a READY subchannel: as `round_robin`.
pub(crate) fn least_request(candidates: &[Candidate], rng: &mut SplitMix64) -> Decision {
    let ready = |c: &&Candidate| c.state == ConnectivityState::Ready;
    let preferred = candidates
        .iter()
        .filter(ready)
        .filter(|c| !c.avoided)
        .count();
    let avoid_some = preferred >= 1;
    let eligible =
        |c: &Candidate| c.state == ConnectivityState::Ready && (!avoid_some || !c.avoided);
    let n = candidates.iter().filter(|c| eligible(c)).count();
    let nth = |k: usize| {
        candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| eligible(c))
            .nth(k)
            .map(|(i, _)| i)
    };
    match n {
        0 => waiting_or_failed(candidates),
        1 => nth(0).map_or(Decision::Fail, Decision::Pick),
        _ => {
            let a = (rng.next_u64() % n as u64) as usize;
            // A second draw among the others: two distinct choices.
            let mut b = (rng.next_u64() % (n as u64 - 1)) as usize;
            if b >= a {
                b += 1;
            }
            match (nth(a), nth(b)) {
                (Some(a), Some(b)) if candidates[b].load < candidates[a].load => Decision::Pick(b),
                (Some(a), _) => Decision::Pick(a),
                _ => Decision::Fail,
            }
        }
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
            load: 0,
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
                load: 0,
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

    fn loaded(load: usize) -> Candidate {
        Candidate { load, ..c(Ready) }
    }

    #[test]
    fn least_request_takes_the_less_loaded_of_two_and_never_the_most_loaded() {
        let mut rng = SplitMix64::new(7);
        // Two subchannels: both are drawn every time, the idle one always wins.
        let two = [loaded(5), loaded(0)];
        for _ in 0..50 {
            assert_eq!(least_request(&two, &mut rng), Decision::Pick(1));
        }
        // Four: the busiest can never win a draw of two; the idlest wins most.
        let four = [loaded(9), loaded(1), loaded(3), loaded(0)];
        let mut wins = [0u32; 4];
        for _ in 0..4000 {
            match least_request(&four, &mut rng) {
                Decision::Pick(i) => wins[i] += 1,
                other => panic!("no pick: {other:?}"),
            }
        }
        assert_eq!(wins[0], 0, "{wins:?}");
        // The idlest wins every draw it is in: half of them (3 of the 6 pairs).
        assert!((1800..2200).contains(&wins[3]), "{wins:?}");
        assert!(wins[1] > wins[2], "{wins:?}");
    }

    #[test]
    fn least_request_skips_subchannels_not_ready_and_the_avoided_one() {
        let mut rng = SplitMix64::new(3);
        let set = [c(TransientFailure), loaded(4), c(Connecting)];
        for _ in 0..20 {
            assert_eq!(least_request(&set, &mut rng), Decision::Pick(1));
        }
        // The avoided (refusing) one is idle, yet the other READY one is taken.
        let mut refused = [loaded(0), loaded(8)];
        refused[0].avoided = true;
        for _ in 0..20 {
            assert_eq!(least_request(&refused, &mut rng), Decision::Pick(1));
        }
        // Only the avoided one is READY: still better than failing.
        let only = [
            Candidate {
                avoided: true,
                ..loaded(0)
            },
            c(TransientFailure),
        ];
        assert_eq!(least_request(&only, &mut rng), Decision::Pick(0));
        assert_eq!(
            least_request(&[c(TransientFailure), c(Connecting)], &mut rng),
            Decision::Queue
        );
        assert_eq!(
            least_request(&[c(TransientFailure)], &mut rng),
            Decision::Fail
        );
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
