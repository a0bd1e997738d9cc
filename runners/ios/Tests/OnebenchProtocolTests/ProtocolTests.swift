@testable import OnebenchProtocol
import XCTest

/// The protocol's rules on a fake clock: no Core ML, no device, so `swift test` runs them anywhere.
final class ProtocolTests: XCTestCase {
    let quick = ProtocolConfig(warmup_iters: 5, warmup_s: 0.05, warmup_max_s: 1.0, warmup_window: 5, warmup_tol: 0.05,
                               min_iters: 10, min_s: 0.2, max_s: 1.0, max_iters: 100_000, target_rel_ci: 0.02,
                               repeats: 1, preset: "quick")

    /// A clock advanced only by the fake steps, so time is exactly the sum of the step durations.
    final class FakeClock {
        var now: UInt64 = 0
        func read() -> UInt64 { now }
    }

    func testMedianCIMatchesTheHarnessOrderStatistics() {
        // Values checked against scipy.stats.quantile_test(...).confidence_interval(0.95) on 0..n-1.
        let cases: [(n: Int, low: Double, high: Double)] = [(10, 1, 8), (20, 5, 14), (100, 39, 60)]
        for c in cases {
            let ci = medianCI((0..<c.n).map { Double($0) })
            XCTAssertEqual(ci?.low, c.low, "n=\(c.n)")
            XCTAssertEqual(ci?.high, c.high, "n=\(c.n)")
        }
        XCTAssertNil(medianCI([1.0]))
        XCTAssertNil(medianCI([1.0, 2.0, 3.0]))  // too few samples for a 95% interval (scipy: nan)
        XCTAssertEqual(median([1, 2, 3, 4]), 2.5)
    }

    func testSteadyStepsConvergeAndStopOnTheCI() {
        let clock = FakeClock()
        let m = measure(quick, clock: clock.read) { () -> UInt64 in clock.now += 1_000_000; return 1_000_000 }
        XCTAssertTrue(m.warmup_converged)
        XCTAssertEqual(m.stop_reason, "ci")
        XCTAssertGreaterThanOrEqual(m.samples_ns.count, quick.min_iters)
        XCTAssertGreaterThanOrEqual(Double(m.samples_ns.count) * 1e-3, quick.min_s)  // ran at least min_s
    }

    func testNoisyStepsStopAtMaxSeconds() {
        let clock = FakeClock()
        var i: UInt64 = 0
        let m = measure(quick, clock: clock.read) { () -> UInt64 in
            i += 1
            let d: UInt64 = i % 2 == 0 ? 1_000_000 : 3_000_000  // two levels: the median's CI never narrows
            clock.now += d
            return d
        }
        XCTAssertEqual(m.stop_reason, "max_s")
    }

    func testWarmupThatNeverSettlesIsReported() {
        let clock = FakeClock()
        var d: UInt64 = 1_000_000
        let m = measure(quick, clock: clock.read) { () -> UInt64 in d += d / 10; clock.now += d; return d }
        XCTAssertFalse(m.warmup_converged)
    }
}
