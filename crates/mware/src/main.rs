//! The mware binary (skeleton).
fn main() {}
