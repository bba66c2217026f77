// swift-tools-version:6.0
// libFuzzer targets for atlas-stream-webhook. A package of its own so the main build
// never needs the fuzzer runtime. Build and run one target with ./run.sh TARGET [SECONDS].
import PackageDescription

let package = Package(
    name: "atlas-stream-webhook-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "atlas-stream-webhook", path: "../..")],
    targets: [
        .target(name: "CFuzzerDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzerDriver", .product(name: "AtlasStreamWebhookModules", package: "atlas-stream-webhook")]),
        .executableTarget(name: "FuzzHTTPParser", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzChunkedBody", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzJSON", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzJSONStreamFilter", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzAdmission", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzAdmissionCost", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzYAML", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzConfiguration", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzKubernetesClient", dependencies: ["FuzzSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
