// swift-tools-version:5.9
// onebench's on-device runner. OnebenchProtocol is pure Swift (the timing rules, statistics for the
// stop rule, the bundle and results formats) and is unit-tested with `swift test` on any OS with
// Swift; OnebenchRunner adds the Core ML calls and runs on iOS 16+ / macOS 13+.
import PackageDescription

let package = Package(
    name: "OnebenchRunner",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "OnebenchProtocol", targets: ["OnebenchProtocol"]),
        .library(name: "OnebenchRunner", targets: ["OnebenchRunner"]),
    ],
    targets: [
        .target(name: "OnebenchProtocol"),
        .target(name: "OnebenchRunner", dependencies: ["OnebenchProtocol"]),
        .testTarget(name: "OnebenchProtocolTests", dependencies: ["OnebenchProtocol"]),
        // Runs a bundle copied to Tests/OnebenchDeviceTests/Bundle (see the README's iPhone section).
        .testTarget(name: "OnebenchDeviceTests", dependencies: ["OnebenchRunner"], resources: [.copy("Bundle")]),
    ]
)
