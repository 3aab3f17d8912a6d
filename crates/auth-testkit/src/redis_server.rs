//! Throwaway redis-server (to be written).
