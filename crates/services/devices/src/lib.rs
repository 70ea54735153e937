//! x
pub fn f(){}
