//! rampart (work in progress lib root)
pub mod audit;
pub mod clock;
pub mod model;
pub mod policy {
    pub mod data;
}
pub mod store;
