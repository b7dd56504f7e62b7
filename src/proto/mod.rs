//! The wire protocols, pure: one module per protocol, one type per message.
pub mod discovery;
pub mod ns;
pub mod provdoc;
pub mod soap;
pub mod syncml;
pub mod wstep;
pub mod xcep;
