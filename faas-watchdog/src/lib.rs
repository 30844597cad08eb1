//! An OpenFaaS-compatible function watchdog
