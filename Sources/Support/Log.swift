import Logging

/// Diagnostics for operators (what the harness did behind a verdict: a
/// reconnect to libvirt, a QEMU killed directly). The CLI sends them to
/// stderr; a library user bootstraps swift-log as it likes.
public let log = Logger(label: "kharness")
