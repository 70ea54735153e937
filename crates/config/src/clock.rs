//! The wall clock as every crate writes it in records and messages: milliseconds since
//! the Unix epoch. Defined once here, the lowest crate that coordination, jobs and the
//! services all depend on.

/// Milliseconds since the Unix epoch (0 if the clock stands before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_ms_is_after_2020_and_does_not_go_back() {
        let a = super::now_ms();
        let b = super::now_ms();
        assert!(a > 1_577_836_800_000, "{a} is before 2020");
        assert!(b >= a);
    }
}
