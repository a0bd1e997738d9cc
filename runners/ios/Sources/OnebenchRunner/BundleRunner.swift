import CoreML
import Foundation
import OnebenchProtocol
#if canImport(UIKit)
import UIKit
#endif

/// Runs every job of a bundle with Core ML: compile, load with the job's compute units, first
/// prediction, then `predict` timed by the shared protocol (`OnebenchProtocol.measure`), `repeats`
/// times with a fresh model load each (the harness's separate processes). A failing job becomes an
/// `error` result and the run goes on.
public struct BundleRunner {
    public let bundleURL: URL
    public init(bundleURL: URL) { self.bundleURL = bundleURL }

    static let computeUnits: [String: MLComputeUnits] = [
        "all": .all, "cpu": .cpuOnly, "cpu-gpu": .cpuAndGPU, "cpu-ne": .cpuAndNeuralEngine,
    ]

    public func run(log: (String) -> Void = { print($0) }) throws -> DeviceResults {
        let manifest = try Manifest.load(from: bundleURL.appendingPathComponent("manifest.json"))
        var results: [JobResult] = []
        for job in manifest.jobs {
            log("onebench: \(job.job_id)")
            do {
                results.append(try runJob(job, config: manifest.protocol_))
            } catch {
                results.append(JobResult(job: job, status: "error", message: "\(error)", coldStart: [:], processes: []))
            }
        }
        return DeviceResults(device: Self.deviceInfo(), protocolConfig: manifest.protocol_, results: results)
    }

    func runJob(_ job: ManifestJob, config: ProtocolConfig) throws -> JobResult {
        guard let units = Self.computeUnits[job.job.device] else {
            throw NSError(domain: "onebench", code: 2, userInfo: [NSLocalizedDescriptionKey: "unknown compute units \(job.job.device)"])
        }
        let clock = monotonicClock
        var t0 = clock()
        let compiled = try MLModel.compileModel(at: bundleURL.appendingPathComponent(job.package))
        var cold: [String: Double] = ["compile_s": Double(clock() - t0) / 1e9]
        defer { try? FileManager.default.removeItem(at: compiled) }
        let configuration = MLModelConfiguration()
        configuration.computeUnits = units
        let input = try Self.seededInput(shape: job.input.shape)
        let features = try MLDictionaryFeatureProvider(dictionary: [job.input.name: MLFeatureValue(multiArray: input)])
        var processes: [Measurement] = []
        for repeatIndex in 0..<max(1, config.repeats) {
            t0 = clock()
            let model = try MLModel(contentsOf: compiled, configuration: configuration)
            let loadS = Double(clock() - t0) / 1e9
            t0 = clock()
            _ = try model.prediction(from: features)
            let firstMs = Double(clock() - t0) / 1e6
            if repeatIndex == 0 { cold["load_s"] = loadS; cold["first_inference_ms"] = firstMs }
            let options = MLPredictionOptions()
            processes.append(try measure(config, clock: clock) {
                let start = clock()
                _ = try model.prediction(from: features, options: options)
                return clock() - start
            })
        }
        return JobResult(job: job, status: "ok", message: "", coldStart: cold, processes: processes)
    }

    /// Standard-normal input with a fixed seed (values do not change Core ML's speed; a fixed seed keeps runs identical).
    static func seededInput(shape: [Int]) throws -> MLMultiArray {
        let array = try MLMultiArray(shape: shape.map { NSNumber(value: $0) }, dataType: .float32)
        var state: UInt64 = 0x9E3779B97F4A7C15
        let pointer = array.dataPointer.bindMemory(to: Float.self, capacity: array.count)
        for i in 0..<array.count {
            state = state &* 6364136223846793005 &+ 1442695040888963407  // PCG-style LCG step
            let u1 = max(Double(state >> 11) / Double(1 << 53), 1e-12)
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u2 = Double(state >> 11) / Double(1 << 53)
            pointer[i] = Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
        }
        return array
    }

    static func deviceInfo() -> DeviceInfo {
        var system = utsname()
        uname(&system)
        let machine = withUnsafeBytes(of: &system.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let thermal: String
        switch ProcessInfo.processInfo.thermalState {
        case .nominal: thermal = "nominal"
        case .fair: thermal = "fair"
        case .serious: thermal = "serious"
        case .critical: thermal = "critical"
        @unknown default: thermal = "unknown"
        }
        #if canImport(UIKit)
        let os = "\(UIDevice.current.systemName) \(UIDevice.current.systemVersion)"
        let name = UIDevice.current.name
        #else
        let os = "macOS \(ProcessInfo.processInfo.operatingSystemVersionString)"
        let name = Host.current().localizedName ?? machine
        #endif
        return DeviceInfo(model: machine, os: os, name: name, cores: ProcessInfo.processInfo.activeProcessorCount,
                          thermal_state: thermal)
    }
}
