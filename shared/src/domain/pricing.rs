//! What a night off-hours saves, at the manual's Fargate prices. The length of the night
//! comes from the window (`domain::uptime::Window::night_around`), or from the snapshot's
//! `saved` time for the night that ends.

/// Fargate price of one vCPU for one hour, USD (the manual's "Current Pricing").
pub const PRICE_VCPU_HOUR: f64 = 0.04048;
/// Fargate price of one GB of memory for one hour, USD (the manual's "Current Pricing").
pub const PRICE_GB_HOUR: f64 = 0.004445;

/// Task-level CPU as ECS reports it: units (`1024`), or `1 vCPU` / `0.5 vCPU`.
pub fn cpu_units(s: &str) -> Option<u32> {
    scaled(s, &["vcpu"], 1024.0)
}

/// Task-level memory as ECS reports it: MiB (`2048`), or `2 GB`.
pub fn memory_mib(s: &str) -> Option<u32> {
    scaled(s, &["gb"], 1024.0)
}

fn scaled(s: &str, units: &[&str], factor: f64) -> Option<u32> {
    let s = s.trim().to_ascii_lowercase();
    if let Ok(n) = s.parse::<u32>() {
        return Some(n);
    }
    let number = units
        .iter()
        .find_map(|u| s.strip_suffix(u))
        .map(str::trim)?;
    let v = number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)?
        * factor;
    (v <= f64::from(u32::MAX)).then(|| v.round() as u32)
}

/// USD per hour that `tasks` tasks of `cpu_units` CPU units and `memory_mib` MiB cost
/// at the manual's Fargate prices (1024 units = 1 vCPU, 1024 MiB = 1 GB); 0 for no
/// tasks or fewer.
pub fn hourly_cost(cpu_units: u32, memory_mib: u32, tasks: i32) -> f64 {
    let per_task_hour = f64::from(cpu_units) / 1024.0 * PRICE_VCPU_HOUR
        + f64::from(memory_mib) / 1024.0 * PRICE_GB_HOUR;
    per_task_hour * f64::from(tasks.max(0))
}

/// USD saved by running `tasks_removed` fewer tasks for `hours` (not negative).
pub fn saving(cpu_units: u32, memory_mib: u32, tasks_removed: i32, hours: f64) -> f64 {
    hourly_cost(cpu_units, memory_mib, tasks_removed) * hours.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_sizes_in_units_or_words() {
        assert_eq!(cpu_units("1024"), Some(1024));
        assert_eq!(cpu_units("1 vCPU"), Some(1024));
        assert_eq!(cpu_units("0.25 vcpu"), Some(256));
        assert_eq!(memory_mib("2048"), Some(2048));
        assert_eq!(memory_mib("2 GB"), Some(2048));
        assert_eq!(memory_mib("0.5GB"), Some(512));
        for bad in ["", "lots", "-1", "-1 GB", "1 TB", "NaN GB"] {
            assert_eq!(memory_mib(bad), None, "{bad}");
        }
    }

    #[test]
    fn savings_use_the_manuals_prices() {
        // Prod task: 1 vCPU, 2 GB; one task removed for 11 hours.
        let usd = saving(1024, 2048, 1, 11.0);
        assert!((usd - 0.54307).abs() < 1e-9, "{usd}");
        assert!((hourly_cost(1024, 2048, 1) - 0.04937).abs() < 1e-9);
        // A weekend night of prod, Friday 20:00 to Monday 07:00.
        let usd = saving(1024, 2048, 1, 59.0);
        assert!((usd - 59.0 * 0.04937).abs() < 1e-9, "{usd}");
        // Dev task: 0.5 vCPU, 1 GB; two removed for 10 hours.
        let usd = saving(512, 1024, 2, 10.0);
        assert!(
            (usd - 2.0 * 10.0 * (0.02024 + 0.004445)).abs() < 1e-9,
            "{usd}"
        );
        assert_eq!(saving(1024, 2048, 0, 11.0), 0.0);
        assert_eq!(saving(1024, 2048, -1, 11.0), 0.0);
        assert_eq!(saving(1024, 2048, 1, -3.0), 0.0);
    }
}
