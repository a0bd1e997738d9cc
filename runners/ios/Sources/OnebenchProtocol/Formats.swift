import Foundation

/// A job's key, copied verbatim from the bundle's manifest so results join the harness's records.
public struct JobKey: Codable, Equatable {
    public var model: String
    public var backend: String
    public var device: String  // Core ML compute units: all, cpu, cpu-gpu, cpu-ne
    public var precision: String
    public var batch: Int
    public var threads: Int
    public var form: String
    public var input_size: Int
    public var boundary: String
}

public struct ManifestJob: Codable {
    public struct Input: Codable { public var name: String; public var shape: [Int] }
    public var job_id: String
    public var job: JobKey
    public var package: String
    public var package_sha256: String
    public var input: Input
    public var output: String
}

/// `manifest.json` of a bundle written by `bench export --backend coreml --bundle DIR`.
public struct Manifest: Codable {
    public var format: String
    public var version: Int
    public var protocol_: ProtocolConfig
    public var jobs: [ManifestJob]

    enum CodingKeys: String, CodingKey { case format, version, protocol_ = "protocol", jobs }

    public static func load(from url: URL) throws -> Manifest {
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: url))
        guard manifest.format == "onebench-coreml-bundle", manifest.version == 1 else {
            throw NSError(domain: "onebench", code: 1, userInfo: [NSLocalizedDescriptionKey: "not an onebench bundle v1: \(url.path)"])
        }
        return manifest
    }
}

/// One job's outcome, in the format `bench ingest` validates (`harness/ingest.py`).
public struct JobResult: Codable {
    public var job_id: String
    public var job: JobKey
    public var status: String  // "ok" or "error"
    public var message: String
    public var package_sha256: String
    public var cold_start: [String: Double]  // compile_s, load_s, first_inference_ms
    public var processes: [Measurement]

    public init(job: ManifestJob, status: String, message: String, coldStart: [String: Double], processes: [Measurement]) {
        self.job_id = job.job_id; self.job = job.job; self.status = status; self.message = message
        self.package_sha256 = job.package_sha256; self.cold_start = coldStart; self.processes = processes
    }
}

public struct DeviceInfo: Codable {
    public var model: String  // hardware identifier, e.g. iPhone13,2
    public var os: String
    public var name: String
    public var cores: Int
    public var thermal_state: String

    public init(model: String, os: String, name: String, cores: Int, thermal_state: String) {
        self.model = model; self.os = os; self.name = name; self.cores = cores; self.thermal_state = thermal_state
    }
}

public struct RunnerInfo: Codable {
    public var name = "OnebenchRunner"
    public var version = "0.1.0"
    public var clock = "DispatchTime.uptimeNanoseconds (monotonic)"
    public init() {}
}

/// The file the runner writes and `bench ingest FILE` reads.
public struct DeviceResults: Codable {
    public var format = "onebench-device-results"
    public var version = 1
    public var device: DeviceInfo
    public var runner = RunnerInfo()
    public var protocol_: ProtocolConfig
    public var results: [JobResult]

    enum CodingKeys: String, CodingKey { case format, version, device, runner, protocol_ = "protocol", results }

    public init(device: DeviceInfo, protocolConfig: ProtocolConfig, results: [JobResult]) {
        self.device = device; self.protocol_ = protocolConfig; self.results = results
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
