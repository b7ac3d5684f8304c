//! rampart (lib root; module map written once all modules land)
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod import;
pub mod model;
pub mod ops;
pub mod policy;
pub mod services;
pub mod store;
pub mod vault;
