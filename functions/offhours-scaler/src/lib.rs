//! offhours-scaler: under construction.
