//! Contract suite for the port (to be written).
