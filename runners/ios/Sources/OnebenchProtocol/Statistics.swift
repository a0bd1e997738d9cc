import Foundation

/// The median as numpy computes it (mean of the two middle values for an even count).
public func median(_ sorted: [Double]) -> Double {
    precondition(!sorted.isEmpty)
    let n = sorted.count
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
}

/// P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so large n does not overflow.
func binomialHalfCDF(_ k: Int, _ n: Int) -> Double {
    if k < 0 { return 0 }
    if k >= n { return 1 }
    let logHalfN = Double(n) * log(0.5)
    var total = 0.0
    for i in 0...k {
        total += exp(lgamma(Double(n + 1)) - lgamma(Double(i + 1)) - lgamma(Double(n - i + 1)) + logHalfN)
    }
    return min(total, 1)
}

/// Distribution-free confidence interval of the median from order statistics: the same interval as
/// the harness (`scipy.stats.quantile_test(...).confidence_interval`): with k the smallest count
/// whose Binomial(n, 1/2) CDF reaches alpha/2, low = x[k-1] and high = x[n-k]; nil when undefined.
public func medianCI(_ sorted: [Double], confidence: Double = 0.95) -> (low: Double, high: Double)? {
    let n = sorted.count
    guard n >= 2 else { return nil }
    let tail = (1 - confidence) / 2
    var k = 0
    while binomialHalfCDF(k, n) < tail { k += 1 }
    guard k >= 1, n - k < n else { return nil }
    return (sorted[k - 1], sorted[n - k])
}

/// Half the width of the median's CI relative to the median (infinity when undefined).
public func relativeCIHalfWidth(_ samples: [UInt64]) -> Double {
    let sorted = samples.map(Double.init).sorted()
    guard let ci = medianCI(sorted) else { return .infinity }
    let med = median(sorted)
    return med > 0 ? (ci.high - ci.low) / 2 / med : .infinity
}
