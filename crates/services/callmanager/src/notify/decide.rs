//! The pure step of a notification: given a number, the notification's rules and the
//! time, what happens next to the number (call attempt N now, wait until T, or become
//! final), with no I/O. [`crate::notify::runner`] acts on it.

use super::{Attempt, Number, Outcome, Window};

/// The rules a number is called by (from its notification).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Most attempts.
    pub attempts: u32,
    /// Pause between two attempts, ms.
    pub retry_after_ms: u64,
    /// When calls may start.
    pub window: Window,
    /// Whether a confirmation digit is asked for (then `played` alone is retried).
    pub confirm: bool,
}

/// What a number does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Place attempt `index` now.
    Call {
        /// Its index (1-based).
        index: u32,
    },
    /// Nothing before this time (ms since the Unix epoch).
    Wait {
        /// When to look again.
        until_ms: u64,
    },
    /// The number is done: its final state and why.
    Final {
        /// One of [`super::FINAL`].
        state: &'static str,
        /// Why, in words.
        why: String,
    },
    /// Nothing to do: already final, or an attempt is running.
    Idle,
}

/// What `n` does next under `r` at `now_ms`.
pub fn next(n: &Number, r: &Rules, now_ms: u64) -> Next {
    if n.is_final() {
        return Next::Idle;
    }
    let last = n.attempts.last();
    if last.is_some_and(|a| a.end_ms.is_none()) {
        return Next::Idle;
    }
    let used = n.attempts.len() as u32;
    if let Some(a) = last {
        match a.outcome {
            Some(Outcome::Confirmed) => return fin("confirmed", "the confirmation digit came"),
            Some(Outcome::Played) if !r.confirm => return fin("played", "the message was played to the end"),
            Some(Outcome::Cancelled) => return fin("cancelled", "the notification was cancelled"),
            _ => {}
        }
        if used >= r.attempts {
            let state = match a.outcome {
                Some(Outcome::Played) => "played",
                Some(Outcome::NoAnswer) => "no_answer",
                Some(Outcome::Busy) => "busy",
                _ => "failed",
            };
            return fin(state, &format!("{used} of {} attempts used", r.attempts));
        }
    }
    let mut due = n.next_ms;
    if let Some(nb) = r.window.not_before_ms {
        due = due.max(nb);
    }
    if let Some(na) = r.window.not_after_ms {
        if due > na {
            return fin("expired", &format!("the window closed after {used} of {} attempts", r.attempts));
        }
    }
    if now_ms < due {
        return Next::Wait { until_ms: due };
    }
    Next::Call { index: used + 1 }
}

fn fin(state: &'static str, why: &str) -> Next {
    Next::Final { state, why: why.to_string() }
}

/// The outcome of an INVITE that ended with `code` (not 2xx).
pub fn outcome_of(code: u16) -> Outcome {
    match code {
        486 | 600 => Outcome::Busy,
        408 | 480 | 487 => Outcome::NoAnswer,
        _ => Outcome::Failed,
    }
}

/// Marks the attempt of `n` left running by a stopped instance `interrupted` (ended at
/// `now_ms`, the retry due after `retry_after_ms`); whether it had one.
pub fn interrupt(n: &mut Number, now_ms: u64, retry_after_ms: u64) -> Option<Attempt> {
    let a = n.attempts.last_mut().filter(|a| a.end_ms.is_none())?;
    a.end_ms = Some(now_ms);
    a.outcome = Some(Outcome::Interrupted);
    a.reason = Some(format!("interrupted: {} stopped during the attempt (a failover)", a.instance));
    n.state = "pending".into();
    n.next_ms = now_ms + retry_after_ms;
    Some(a.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(outcomes: &[Option<Outcome>]) -> Number {
        let attempts = outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| Attempt {
                index: i as u32 + 1,
                instance: "m1".into(),
                start_ms: 1000,
                end_ms: o.map(|_| 2000),
                outcome: *o,
                code: None,
                reason: None,
                call_id: format!("c{i}"),
                answered_ms: None,
                played_ms: 0,
                answer_to_audio_ms: None,
                dialog: None,
            })
            .collect();
        Number { to: "sip:a@d".into(), state: "pending".into(), next_ms: 5000, attempts }
    }

    fn rules(attempts: u32, confirm: bool) -> Rules {
        Rules { attempts, retry_after_ms: 3000, window: Window::default(), confirm }
    }

    #[test]
    fn a_number_is_called_retried_after_the_pause_and_ends_with_its_last_outcome() {
        let r = rules(2, false);
        let fresh = Number { to: "sip:a@d".into(), state: "pending".into(), next_ms: 0, attempts: vec![] };
        assert_eq!(next(&fresh, &r, 10), Next::Call { index: 1 });
        let busy = num(&[Some(Outcome::Busy)]);
        assert_eq!(next(&busy, &r, 4999), Next::Wait { until_ms: 5000 });
        assert_eq!(next(&busy, &r, 5000), Next::Call { index: 2 });
        let running = num(&[Some(Outcome::Busy), None]);
        assert_eq!(next(&running, &r, 9000), Next::Idle);
        assert!(matches!(next(&num(&[Some(Outcome::Busy), Some(Outcome::Busy)]), &r, 9000), Next::Final { state: "busy", .. }));
        let na = num(&[Some(Outcome::Busy), Some(Outcome::NoAnswer)]);
        assert!(matches!(next(&na, &r, 9000), Next::Final { state: "no_answer", .. }));
        let interrupted = num(&[Some(Outcome::Interrupted), Some(Outcome::Interrupted)]);
        assert!(matches!(next(&interrupted, &r, 9000), Next::Final { state: "failed", .. }));
    }

    #[test]
    fn played_ends_a_number_unless_a_confirmation_is_asked_for() {
        let played = num(&[Some(Outcome::Played)]);
        assert!(matches!(next(&played, &rules(3, false), 0), Next::Final { state: "played", .. }));
        assert_eq!(next(&played, &rules(3, true), 6000), Next::Call { index: 2 });
        assert!(matches!(next(&num(&[Some(Outcome::Confirmed)]), &rules(3, true), 0), Next::Final { state: "confirmed", .. }));
        assert!(matches!(next(&num(&[Some(Outcome::Played)]), &rules(1, true), 0), Next::Final { state: "played", .. }));
    }

    #[test]
    fn the_window_delays_the_first_call_and_expires_the_rest() {
        let mut r = rules(3, false);
        r.window = Window { not_before_ms: Some(7000), not_after_ms: Some(8000) };
        let busy = num(&[Some(Outcome::Busy)]);
        assert_eq!(next(&busy, &r, 5000), Next::Wait { until_ms: 7000 });
        assert_eq!(next(&busy, &r, 7500), Next::Call { index: 2 });
        r.window.not_after_ms = Some(4000);
        assert!(matches!(next(&busy, &r, 5000), Next::Final { state: "expired", .. }));
    }

    #[test]
    fn an_unfinished_attempt_is_interrupted_and_the_retry_is_the_next_index() {
        let mut n = num(&[Some(Outcome::Busy), None]);
        let a = interrupt(&mut n, 10_000, 3000).expect("one was running");
        assert_eq!((a.index, a.outcome, a.end_ms), (2, Some(Outcome::Interrupted), Some(10_000)));
        assert_eq!(next(&n, &rules(3, false), 13_000), Next::Call { index: 3 });
        assert!(interrupt(&mut n, 11_000, 3000).is_none(), "nothing left running");
        assert_eq!(outcome_of(486), Outcome::Busy);
        assert_eq!(outcome_of(487), Outcome::NoAnswer);
        assert_eq!(outcome_of(503), Outcome::Failed);
    }
}
