//! etcd for tests. (Stub: to be written.)
