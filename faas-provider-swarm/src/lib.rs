//! Runs functions as Docker Swarm services through bollard
