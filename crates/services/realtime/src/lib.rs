//! mware-realtime: Realtime provisioning for SIP servers (Asterisk res_config_curl protocol) and the rtcache sidecar. (Stub: to be written.)
