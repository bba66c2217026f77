// swift-tools-version:6.0
// Micro benchmarks of the request path (no I/O), with allocation counts. A package of its
// own, like Tests/Fuzz, so the product's package (and its container build) holds only the
// server. Release builds only:
//   swift run -c release --package-path Benchmarks atlas-stream-webhook-benchmarks [--smoke] [--check-allocations]
import PackageDescription

let package = Package(
    name: "atlas-stream-webhook-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "atlas-stream-webhook", path: "..")],
    targets: [
        .target(name: "CAllocationCounter", path: "CAllocationCounter"),
        .executableTarget(name: "atlas-stream-webhook-benchmarks",
                          dependencies: ["CAllocationCounter",
                                         .product(name: "AtlasStreamWebhookModules", package: "atlas-stream-webhook")],
                          path: "Pipeline"),
    ],
    swiftLanguageModes: [.v6]
)
