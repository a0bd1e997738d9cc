import Foundation

/// The rules of one measurement, decoded from the bundle's `protocol.json` (the harness's
/// `ProtocolConfig`): the same warm-up and stop rule as `harness/protocol.py`.
public struct ProtocolConfig: Codable, Equatable {
    public var warmup_iters: Int
    public var warmup_s: Double
    public var warmup_max_s: Double
    public var warmup_window: Int
    public var warmup_tol: Double
    public var min_iters: Int
    public var min_s: Double
    public var max_s: Double
    public var max_iters: Int
    public var target_rel_ci: Double
    public var repeats: Int
    public var preset: String?
}

/// What one measurement produced: warm-up and timed iterations in nanoseconds.
public struct Measurement: Codable, Equatable {
    public var samples_ns: [UInt64]
    public var warmup_ns: [UInt64]
    public var warmup_converged: Bool
    public var stop_reason: String
}

/// A monotonic clock in nanoseconds; tests pass a fake one.
public typealias Clock = () -> UInt64

/// `DispatchTime`'s uptime clock: monotonic, nanoseconds, not affected by wall-clock changes.
public let monotonicClock: Clock = { DispatchTime.now().uptimeNanoseconds }

/// Time `step` (one inference, synchronous) under `config`. `step` returns its own duration in ns.
public func measure(_ config: ProtocolConfig, clock: Clock = monotonicClock, step: () throws -> UInt64) rethrows -> Measurement {
    // Warm-up: at least warmup_iters and warmup_s, until the median of the last window is within
    // warmup_tol of the window before, at most warmup_max_s.
    var warmup: [UInt64] = []
    var converged = false
    let warmStart = clock()
    let w = config.warmup_window
    while true {
        warmup.append(try step())
        let elapsed = Double(clock() - warmStart) / 1e9
        if warmup.count < config.warmup_iters || elapsed < config.warmup_s { continue }
        if elapsed >= config.warmup_max_s { break }
        if warmup.count >= 2 * w && warmup.count % w == 0 {
            let last = median(warmup.suffix(w).map { Double($0) }.sorted())
            let before = median(warmup.suffix(2 * w).prefix(w).map { Double($0) }.sorted())
            if abs(last - before) <= config.warmup_tol * before { converged = true; break }
        }
    }
    // Measurement: at least min_iters and min_s; stop when the median's CI is within target_rel_ci,
    // or at max_s / max_iters; the rule is checked at geometrically spaced counts.
    var samples: [UInt64] = []
    samples.reserveCapacity(1024)
    let start = clock()
    var nextCheck = config.min_iters
    var reason = "max_iters"
    while samples.count < config.max_iters {
        samples.append(try step())
        if samples.count < nextCheck { continue }
        let elapsed = Double(clock() - start) / 1e9
        if elapsed < config.min_s { nextCheck = samples.count + max(1, samples.count / 4); continue }
        if elapsed >= config.max_s { reason = "max_s"; break }
        if relativeCIHalfWidth(samples) <= config.target_rel_ci { reason = "ci"; break }
        nextCheck = samples.count + max(1, samples.count / 4)
    }
    return Measurement(samples_ns: samples, warmup_ns: warmup, warmup_converged: converged, stop_reason: reason)
}
