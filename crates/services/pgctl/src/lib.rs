//! mware-pgctl: pg_controller: keeps exactly one PostgreSQL primary per replicated pair. (Stub: to be written.)
