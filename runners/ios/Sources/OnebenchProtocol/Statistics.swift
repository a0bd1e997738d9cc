import Foundation

/// The median as numpy computes it (mean of the two middle values for an even count).
public func median(_ sorted: [Double]) -> Double {
    precondition(!sorted.isEmpty)
    let n = sorted.count
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
}

/// The smallest k with P(X <= k) >= q for X ~ Binomial(n, 1/2) (scipy's `binom.ppf`), summing the
/// probability mass in log space term by term: O(k), no overflow for large n.
func binomialHalfQuantile(_ q: Double, _ n: Int) -> Int {
    let logHalfN = Double(n) * log(0.5)
    let logNFactorial = lgamma(Double(n + 1))
    var cdf = 0.0
    for k in 0...n {
        cdf += exp(logNFactorial - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1)) + logHalfN)
        if cdf >= q { return k }
    }
    return n
}

/// Distribution-free confidence interval of the median from order statistics: the same interval as
/// the harness (`scipy.stats.quantile_test(...).confidence_interval`): with k the smallest count
/// whose Binomial(n, 1/2) CDF reaches alpha/2, low = x[k-1] and high = x[n-k]; nil when undefined.
public func medianCI(_ sorted: [Double], confidence: Double = 0.95) -> (low: Double, high: Double)? {
    let n = sorted.count
    guard n >= 2 else { return nil }
    let k = binomialHalfQuantile((1 - confidence) / 2, n)
    guard k >= 1 else { return nil }
    return (sorted[k - 1], sorted[n - k])
}

/// Half the width of the median's CI relative to the median (infinity when undefined).
public func relativeCIHalfWidth(_ samples: [UInt64]) -> Double {
    let sorted = samples.map { Double($0) }.sorted()
    guard let ci = medianCI(sorted) else { return .infinity }
    let med = median(sorted)
    return med > 0 ? (ci.high - ci.low) / 2 / med : .infinity
}
