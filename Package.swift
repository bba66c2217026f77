// swift-tools-version:6.2
import Foundation
import PackageDescription

// The rooms and who imports whom: docs/architecture.md.

/// Release links with lld: relative relocations packed (DT_RELR, glibc 2.36+) instead of
/// 24 bytes each, and the functions a serving process runs laid out together
/// (Benchmarks/link-order.txt, made by Benchmarks/link-order.py beside it), so the pages the kernel maps
/// around each first call hold code that is used. See docs/performance.md.
let packageDirectory = String(#filePath.dropLast("/Package.swift".count))
let releaseLinkerFlags: [String] = [
    "-use-ld=lld",
    "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
    "-Xlinker", "--symbol-ordering-file=\(packageDirectory)/Benchmarks/link-order.txt",
    "-Xlinker", "--no-warn-symbol-ordering",
]
/// Release builds of the modules a review passes through export their bodies to the modules
/// that use them, so `JSONValue` accessors and the like inline across module boundaries.
let crossModuleOptimization: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
/// The tests are left out when the directory is (a container build copies only
/// Package.swift and Sources).
let hasTests = FileManager.default.fileExists(atPath: packageDirectory + "/Tests")

let package = Package(
    name: "atlas-stream-webhook",
    products: [
        .executable(name: "atlas-stream-webhook", targets: ["atlas-stream-webhook"]),
        // The modules the fuzz targets (Tests/Fuzz) and the micro benchmarks (Benchmarks),
        // packages of their own, exercise.
        .library(name: "AtlasStreamWebhookModules",
                 targets: ["JSON", "HTTPCore", "HTTPServer", "Admission", "StreamRules", "YAML", "Configuration", "KubernetesClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        // TreeDictionary: the cluster snapshot as a persistent map, so a cache event costs
        // O(log n) and a review's copy O(1), whatever the cluster's size.
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // System libraries: module maps and shim headers only.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CLinux"),

        // Each target depends on exactly the modules its code imports.
        .target(name: "SystemSupport", swiftSettings: crossModuleOptimization),
        .target(name: "JSON", dependencies: ["SystemSupport"], swiftSettings: crossModuleOptimization),
        .target(name: "Units"),
        .target(name: "Metrics", swiftSettings: crossModuleOptimization),
        .target(name: "TLS", dependencies: ["COpenSSL"], swiftSettings: crossModuleOptimization),
        .target(name: "HTTPCore", dependencies: ["SystemSupport"], swiftSettings: crossModuleOptimization),
        .target(name: "HTTPServer", dependencies: ["HTTPCore", "TLS", "CLinux", "SystemSupport"], swiftSettings: crossModuleOptimization),
        .target(name: "StreamRules", dependencies: ["JSON", .product(name: "HashTreeCollections", package: "swift-collections")],
                swiftSettings: crossModuleOptimization),
        .target(name: "Admission", dependencies: ["StreamRules", "JSON"], swiftSettings: crossModuleOptimization),
        .target(name: "YAML", dependencies: ["CYAML", "JSON"]),
        .target(name: "Configuration", dependencies: ["YAML", "StreamRules", "JSON", "Units", "SystemSupport", "HTTPServer"]),
        .target(name: "KubernetesClient", dependencies: ["HTTPCore", "TLS", "JSON", "YAML", "SystemSupport"]),
        .target(name: "ClusterCache", dependencies: ["KubernetesClient", "StreamRules", "JSON", "TLS", "SystemSupport", "Metrics",
                                                     .product(name: "Logging", package: "swift-log"),
                                                     .product(name: "HashTreeCollections", package: "swift-collections")]),
        // The rules as a ValidatingAdmissionPolicy (CEL), from the same catalogue.
        .target(name: "AdmissionPolicy", dependencies: ["StreamRules", "JSON", "YAML"]),
        .target(name: "Manifests", dependencies: ["YAML", "StreamRules", "JSON", "SystemSupport"]),
        .target(name: "Audit", dependencies: ["ClusterCache", "KubernetesClient", "Manifests", "StreamRules", "JSON", "Metrics",
                                              "SystemSupport", .product(name: "Logging", package: "swift-log")]),
        .target(name: "WebhookServer", dependencies: [
            "HTTPServer", "TLS", "Admission", "StreamRules", "JSON", "CLinux", "Units", "SystemSupport", "Metrics",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "atlas-stream-webhook", dependencies: [
            "WebhookServer", "Admission", "HTTPServer", "TLS", "Units", "Configuration", "Manifests", "StreamRules", "YAML", "JSON",
            "ClusterCache", "KubernetesClient", "Audit", "AdmissionPolicy",
            "CLinux", "SystemSupport",
            .product(name: "Logging", package: "swift-log"),
        ],
        linkerSettings: [.unsafeFlags(releaseLinkerFlags, .when(configuration: .release))],
        plugins: ["BuildInfoPlugin"]),
        // The git revision the executable is built from (`--version`, the start log line,
        // `atlas_stream_webhook_build_info`).
        .plugin(name: "BuildInfoPlugin", capability: .buildTool(), path: "Sources/BuildInfoPlugin"),
    ] + (hasTests ? testTargets : []),
    swiftLanguageModes: [.v6]
)

/// Tests mirror the rooms (Tests/<Room>Tests), plus the whole-program suites.
var testTargets: [Target] {
    [
        // Helpers the server suites share: a TLS test client, the server in-process and
        // as a process, temporary files, measurements.
        .target(name: "TestSupport", dependencies: [
            "WebhookServer", "Admission", "HTTPServer", "TLS", "COpenSSL",
            .product(name: "Logging", package: "swift-log"),
        ], path: "Tests/TestSupport"),
        .testTarget(name: "SystemSupportTests", dependencies: ["SystemSupport"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "UnitsTests", dependencies: ["Units"]),
        .testTarget(name: "MetricsTests", dependencies: ["Metrics"]),
        .testTarget(name: "TLSTests", dependencies: ["TLS", "TestSupport"]),
        .testTarget(name: "HTTPCoreTests", dependencies: ["HTTPCore"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "CLinux", "SystemSupport", "TLS"]),
        .testTarget(name: "YAMLTests", dependencies: ["YAML", "JSON"]),
        .testTarget(name: "ConfigurationTests", dependencies: ["Configuration", "StreamRules", "JSON"]),
        .testTarget(name: "StreamRulesTests", dependencies: ["StreamRules", "JSON",
                                                             .product(name: "HashTreeCollections", package: "swift-collections")]),
        .testTarget(name: "AdmissionTests", dependencies: ["Admission", "StreamRules", "JSON"]),
        // The generated admission policies against the rules, case by case, in a CEL runtime.
        .testTarget(name: "AdmissionPolicyTests", dependencies: ["AdmissionPolicy", "StreamRules", "Configuration", "JSON", "TestSupport"]),
        .testTarget(name: "ManifestsTests", dependencies: ["Manifests", "StreamRules", "YAML", "JSON"]),
        .testTarget(name: "KubernetesClientTests", dependencies: ["KubernetesClient", "TLS", "JSON", "TestSupport"]),
        // The cache against a stand-in API server (Tests/Scripts/fake_apiserver.py).
        .testTarget(name: "ClusterCacheTests", dependencies: [
            "ClusterCache", "KubernetesClient", "Manifests", "StreamRules", "TLS", "TestSupport", "JSON", "Metrics",
            .product(name: "HashTreeCollections", package: "swift-collections"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "AuditTests", dependencies: ["Audit", "ClusterCache", "StreamRules", "JSON"]),
        .testTarget(name: "WebhookServerTests", dependencies: ["WebhookServer", "HTTPServer", "TLS", "TestSupport", "SystemSupport"]),
        // Linear cost of every parser and rule on adversarial shapes.
        .testTarget(name: "WorstCaseTests", dependencies: ["Admission", "StreamRules", "JSON", "HTTPServer", "YAML", "Manifests"]),
        // The built executable: commands, the server as a process, deploy/.
        .testTarget(name: "EndToEndTests", dependencies: ["TLS", "TestSupport", "CLinux"]),
    ]
}
