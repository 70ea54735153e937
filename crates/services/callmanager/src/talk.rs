//! Who is talking in a conference: the pure part.
//!
//! Janus 1.1 decides "talking" only from the RFC 6464 level a WebRTC participant puts in
//! its RTP; a plain RTP phone sends none, and Janus does not read it from plain RTP
//! anyway (`tests/conference.rs` keeps a test that fails the day it does). So mware
//! measures it. A room is made with AudioBridge groups, and Janus forwards each group's
//! audio (after its jitter buffer and mute) as PCMU to the active instance
//! ([`crate::talkers`] reads it, [`crate::rooms`] sets the forwarders up and moves them
//! after a failover). Janus allows at most [`GROUPS`] groups in a room, so a room of
//! more participants than that shares the last group among the rest, and [`plan`] moves
//! participants between groups to find who of them is talking.
//!
//! Here: the level of a packet, [`Detector`] (levels in, loud or quiet out) and [`plan`]
//! (the groups' state in, the moves out), each with its rule in words.

/// Packets in the window the level is averaged over: 10 of 20 ms, 200 ms.
pub const WINDOW: usize = 10;
/// A participant starts talking when the window's average level is this loud or louder
/// (the level as in RFC 6464: decibels below full scale, 0 the loudest, 127 silence).
pub const START: u8 = 40;
/// And stops when the average is quieter than this (5 dB of hysteresis, so a voice near
/// the threshold does not flap).
pub const STOP: u8 = 45;

/// The level of a packet of µ-law samples: the RMS in dB below full scale (−dBov),
/// 0 to 127, as RFC 6464 counts it; an empty packet is silence (127).
pub fn level(ulaw: &[u8]) -> u8 {
    if ulaw.is_empty() {
        return 127;
    }
    let sum: f64 = ulaw.iter().map(|b| f64::from(ulaw_to_linear(*b)).powi(2)).sum();
    let rms = (sum / ulaw.len() as f64).sqrt();
    if rms < 1.0 {
        return 127;
    }
    let dbov = 20.0 * (rms / 32768.0).log10();
    (-dbov).round().clamp(0.0, 127.0) as u8
}

/// One G.711 µ-law byte as a 16-bit linear sample (ITU-T G.711).
pub fn ulaw_to_linear(b: u8) -> i16 {
    let b = !b;
    let exp = (b >> 4) & 7;
    let mant = i32::from(b & 0x0f);
    let magnitude = (((mant << 3) + 0x84) << exp) - 0x84;
    (if b & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// Decides from the levels of successive packets whether a participant is talking.
///
/// The rule: average the last [`WINDOW`] packets' levels; a participant who is not
/// talking starts when the average is [`START`] or louder, one who is stops when it is
/// quieter than [`STOP`]. Nothing is decided before the window is full. The same shape
/// as Janus's own rule for WebRTC participants (`audio_active_packets`,
/// `audio_level_average`), with a shorter window (Janus's default is 2 s) so the console
/// follows a conversation.
#[derive(Debug, Clone)]
pub struct Detector {
    levels: [u8; WINDOW],
    seen: usize,
    talking: bool,
}

impl Default for Detector {
    fn default() -> Self {
        Detector { levels: [127; WINDOW], seen: 0, talking: false }
    }
}

impl Detector {
    /// Takes a packet's level; `Some(talking)` at the first full window and whenever
    /// it changes after that.
    pub fn push(&mut self, level: u8) -> Option<bool> {
        self.levels[self.seen % WINDOW] = level;
        self.seen += 1;
        if self.seen < WINDOW {
            return None;
        }
        let avg = self.levels.iter().map(|l| u32::from(*l)).sum::<u32>() / WINDOW as u32;
        let now = if self.talking { avg < u32::from(STOP) } else { avg <= u32::from(START) };
        (now != self.talking || self.seen == WINDOW).then(|| {
            self.talking = now;
            now
        })
    }
}

/// Most groups Janus 1.1's AudioBridge allows in a room (its compile-time limit: a
/// `create` with more answers "Too many groups specified (max 5 allowed)").
pub const GROUPS: usize = 5;

/// A group of a room as [`plan`] sees it.
#[derive(Debug, Clone, Default)]
pub struct GroupState {
    /// Its participants, each with when it was last alone in a group (0: never).
    pub members: Vec<(String, u64)>,
    /// Loud over the last window; `None` before a window is full.
    pub loud: Option<bool>,
    /// Since when its loudness is what it is (ms).
    pub since_ms: u64,
}

/// A participant to move to another group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// Who.
    pub pid: String,
    /// From group index (0-based).
    pub from: usize,
    /// To group index.
    pub to: usize,
}

/// The moves that find who is talking in a shared group.
///
/// A participant joins the room in the last group. A participant alone in its group is
/// measured exactly; a shared group only says whether one of its members is talking.
/// The rule:
/// - an empty group takes a member of a shared group (the one alone longest ago);
/// - when a shared group is loud, each group whose single member has been quiet for a
///   whole window swaps that member with a member of the shared group, those alone
///   longest ago first (never alone: first of all). The quiet one longest quiet goes
///   first. A talker found this way stays alone while it talks.
///
/// With one talker among N participants and [`GROUPS`] groups it is found within
/// ⌈(N − 4) / 4⌉ windows. Nothing moves while a group has not finished a window.
pub fn plan(groups: &[GroupState]) -> Vec<Move> {
    let Some(shared) = groups.iter().position(|g| g.members.len() > 1) else { return vec![] };
    if groups.iter().any(|g| !g.members.is_empty() && g.loud.is_none()) {
        return vec![];
    }
    let mut waiting: Vec<&(String, u64)> = groups[shared].members.iter().collect();
    waiting.sort_by_key(|(pid, alone)| (*alone, pid.clone()));
    let mut out = vec![];
    let mut next = waiting.into_iter();
    // Empty groups first: they cost no swap.
    for (i, _) in groups.iter().enumerate().filter(|(_, g)| g.members.is_empty()) {
        if out.len() + 1 >= groups[shared].members.len() {
            break;
        }
        if let Some((pid, _)) = next.next() {
            out.push(Move { pid: pid.clone(), from: shared, to: i });
        }
    }
    if groups[shared].loud != Some(true) {
        return out;
    }
    let mut quiet: Vec<(usize, &GroupState)> =
        groups.iter().enumerate().filter(|(i, g)| *i != shared && g.members.len() == 1 && g.loud == Some(false)).collect();
    quiet.sort_by_key(|(i, g)| (g.since_ms, *i));
    for (i, g) in quiet {
        let Some((pid, _)) = next.next() else { break };
        out.push(Move { pid: pid.clone(), from: shared, to: i });
        out.push(Move { pid: g.members[0].0.clone(), from: i, to: shared });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulaw_of(x: i16) -> u8 {
        // The inverse of `ulaw_to_linear`, by search (tests only).
        (0..=255u8).min_by_key(|b| (i32::from(ulaw_to_linear(*b)) - i32::from(x)).abs()).unwrap_or(0xff)
    }

    fn tone(amplitude: f64) -> Vec<u8> {
        (0..160).map(|i| ulaw_of((amplitude * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin()) as i16)).collect()
    }

    #[test]
    fn mu_law_decodes_as_g711_says() {
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
    }

    #[test]
    fn levels_are_decibels_below_full_scale() {
        assert_eq!(level(&[0xff; 160]), 127, "µ-law silence");
        assert_eq!(level(&[]), 127);
        // A full-scale sine is 3 dB below full scale; one a hundredth as loud 43 dB.
        assert!((2..=4).contains(&level(&tone(32000.0))), "{}", level(&tone(32000.0)));
        assert!((42..=44).contains(&level(&tone(320.0))), "{}", level(&tone(320.0)));
    }

    #[test]
    fn talking_starts_after_a_loud_window_and_stops_with_hysteresis() {
        let mut d = Detector::default();
        for _ in 0..WINDOW - 1 {
            assert_eq!(d.push(20), None, "nothing is decided before the window is full");
        }
        assert_eq!(d.push(20), Some(true));
        assert_eq!(d.push(20), None);
        // Between START and STOP: still talking (no flapping near the threshold).
        for _ in 0..WINDOW {
            assert_eq!(d.push(43), None);
        }
        let changes: Vec<_> = (0..WINDOW).filter_map(|_| d.push(127)).collect();
        assert_eq!(changes, vec![false], "quiet: stops once");
        // Between START and STOP again: still silent.
        assert!((0..WINDOW * 2).all(|_| d.push(43).is_none()));
        assert_eq!((0..WINDOW).find_map(|_| d.push(START)), Some(true));
    }

    fn group(members: &[(&str, u64)], loud: Option<bool>, since_ms: u64) -> GroupState {
        GroupState { members: members.iter().map(|(p, a)| (p.to_string(), *a)).collect(), loud, since_ms }
    }

    #[test]
    fn nothing_moves_while_alone_or_undecided() {
        let alone: Vec<_> = (0..GROUPS).map(|i| group(&[(["a", "b", "c", "d", "e"][i], 0)], Some(i == 0), 0)).collect();
        assert!(plan(&alone).is_empty());
        let mut g = alone.clone();
        g[4] = group(&[("e", 0), ("f", 0)], Some(true), 0);
        g[1].loud = None;
        assert!(plan(&g).is_empty(), "a group still filling its window");
        g[1].loud = Some(false);
        g[4].loud = Some(false);
        assert!(plan(&g).is_empty(), "the shared group is quiet: everyone in it is silent");
    }

    #[test]
    fn a_loud_shared_group_swaps_its_least_recently_alone_with_the_longest_quiet() {
        let g = vec![
            group(&[("a", 0)], Some(true), 5),
            group(&[("b", 0)], Some(false), 9),
            group(&[("c", 0)], Some(false), 3),
            group(&[("d", 0)], Some(false), 7),
            group(&[("e", 50), ("f", 0), ("g", 20), ("h", 0)], Some(true), 1),
        ];
        let m = plan(&g);
        let mv = |p: &str, from, to| Move { pid: p.into(), from, to };
        // c (quiet since 3) first, then d (7), then b (9); f and h were never alone.
        assert_eq!(m, vec![mv("f", 4, 2), mv("c", 2, 4), mv("h", 4, 3), mv("d", 3, 4), mv("g", 4, 1), mv("b", 1, 4)]);
    }

    #[test]
    fn an_emptied_group_takes_a_member_of_the_shared_one() {
        let g = vec![
            group(&[], None, 0),
            group(&[("b", 0)], Some(false), 0),
            group(&[("c", 0)], Some(false), 0),
            group(&[("d", 0)], Some(false), 0),
            group(&[("e", 10), ("f", 0)], Some(false), 0),
        ];
        assert_eq!(plan(&g), vec![Move { pid: "f".into(), from: 4, to: 0 }]);
    }

    #[test]
    fn one_talker_among_twenty_is_found_within_six_windows() {
        // A simulation of the rule: 20 participants, "t13" talks.
        let mut g: Vec<GroupState> = vec![GroupState::default(); GROUPS];
        g[GROUPS - 1].members = (0..20).map(|i| (format!("t{i}"), 0)).collect();
        let mut windows = 0;
        let mut clock = 1;
        loop {
            for x in g.iter_mut() {
                x.loud = Some(x.members.iter().any(|(p, _)| p == "t13"));
                x.since_ms = clock;
            }
            if g.iter().any(|x| x.members.len() == 1 && x.members[0].0 == "t13") {
                break;
            }
            for m in plan(&g) {
                let at = g[m.from].members.iter().position(|(p, _)| *p == m.pid).unwrap();
                let (pid, _) = g[m.from].members.remove(at);
                g[m.to].members.push((pid, clock));
            }
            windows += 1;
            clock += 1;
            assert!(windows <= 6, "not found: {g:?}");
        }
    }
}
