//! pg for tests. (Stub: to be written.)
