import OnebenchRunner
import XCTest

/// Runs the bundle copied into Tests/OnebenchDeviceTests/Bundle on the destination device, writes
/// the results file to the test's Documents folder, attaches it to the test result, and prints it
/// between markers so it can be cut from the `xcodebuild` log (see the README's iPhone section).
final class RunBundleTests: XCTestCase {
    func testRunBundle() throws {
        guard let bundleURL = Bundle.module.url(forResource: "Bundle", withExtension: nil),
              FileManager.default.fileExists(atPath: bundleURL.appendingPathComponent("manifest.json").path) else {
            throw XCTSkip("copy a bundle from `bench export --backend coreml --bundle DIR` to Tests/OnebenchDeviceTests/Bundle")
        }
        executionTimeAllowance = 3600
        let results = try BundleRunner(bundleURL: bundleURL).run()
        let data = try results.encoded()
        let documents = try FileManager.default.url(for: .documentDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
        try data.write(to: documents.appendingPathComponent("onebench-results.json"))
        let attachment = XCTAttachment(data: data, uniformTypeIdentifier: "public.json")
        attachment.name = "onebench-results.json"
        attachment.lifetime = .keepAlways
        add(attachment)
        print("ONEBENCH-RESULTS-BEGIN")
        print(String(decoding: data, as: UTF8.self))
        print("ONEBENCH-RESULTS-END")
        XCTAssertFalse(results.results.isEmpty)
    }
}
