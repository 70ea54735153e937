//! mware-mutex: Critical sections service: named mutexes and semaphores per domain, fenced and durable. (Stub: to be written.)
