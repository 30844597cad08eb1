//! The faas command: run a platform (faas up) and drive any OpenFaaS-compatible gateway
