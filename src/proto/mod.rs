pub mod syncml;
