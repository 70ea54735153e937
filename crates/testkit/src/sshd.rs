//! sshd for tests. (Stub: to be written.)
