//! Loopback SMTP sink (to be written).
